"""Check what the unmodified WebLLM engine generated (tests/browser/webllm_probe.js) against numpy.

The reference forward pass runs on the weights exactly as the library dequantizes them, so greedy
decoding must pick the same ids; float32 rounding on the GPU only moves logits within a tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def reference_model(model_dir: Path) -> Any:
    """The numpy reference of a compiled model directory (its config and its dequantized weights)."""
    from webapp.compile.architectures import architecture, config_from_dict
    from webapp.compile.reference import float_weights, read_params

    config = config_from_dict(json.loads((model_dir / "mlc-chat-config.json").read_text())["model_config"])
    return architecture(config.model_type).reference(config, float_weights(read_params(model_dir)))


def hosted_libraries(server_url: str, model_id: str) -> dict[str, str]:
    """{schedule set: library URL} as a Hearth server's index.json lists them for a model."""
    from urllib.request import urlopen

    with urlopen(f"{server_url}/models/index.json") as response:
        entry = next(model for model in json.load(response)["models"] if model["id"] == model_id)
    return {schedule: library["url"] for schedule, library in entry["libraries"].items()}


def library_url(server_url: str, model_id: str, schedule: str) -> str:
    """The URL index.json gives for one of a hosted model's libraries ("fallback" or "gpu")."""
    return hosted_libraries(server_url, model_id)[schedule]


def chat_prompt_ids(model_dir: Path, user_message: str) -> list[int]:
    """The ids WebLLM prefills for one user message: its getPromptArray tokenizes the system prompt,
    the user turn and the reply header each on its own and joins the ids."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    template = json.loads((model_dir / "mlc-chat-config.json").read_text())["conv_template"]
    pieces = [
        template["system_template"].replace("{system_message}", template["system_message"]),
        template["roles"]["user"] + template["role_content_sep"] + user_message + template["seps"][0],
        template["roles"]["assistant"] + template["role_empty_sep"],
    ]
    return [token for piece in pieces for token in tokenizer.encode(piece).ids]


def check_greedy(model_dir: Path, prompt_ids: list[int], result: dict, steps: int, tolerance: float) -> None:
    """WebLLM's sampled ids equal the reference's greedy ids, and its logits lie within `tolerance`
    of the step's largest |logit|. A top-1 lead of more than twice the tolerance cannot flip, and
    the reference must have such a lead at every step, or the test data has a near-tie."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    assert result["promptTokens"] == len(prompt_ids)
    expected, expected_logits = reference_model(model_dir).generate(prompt_ids, steps)
    for step, logits in enumerate(expected_logits):
        top2 = np.sort(logits)[-2:]
        assert top2[1] - top2[0] > 2 * tolerance * np.abs(logits).max(), f"test data has a near-tie at step {step}"

    assert result["tokens"] == expected, (tokenizer.decode(result["tokens"]), tokenizer.decode(expected))
    assert len(result["logits"]) == steps
    for step, (ours, theirs) in enumerate(zip(result["logits"], expected_logits, strict=True)):
        scale = np.abs(theirs).max()
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=tolerance * scale, err_msg=f"step {step}")
    # The text WebLLM returns is the decoding of exactly those ids.
    assert result["text"] == tokenizer.decode(expected, skip_special_tokens=False)
