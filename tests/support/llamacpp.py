"""llama.cpp (llama-cpp-python) as the reference decoder: greedy steps with the logits behind each."""

from __future__ import annotations

from typing import Any

import numpy as np


def greedy_steps(model: Any, prompt: list[int], steps: int) -> tuple[list[int], list[np.ndarray]]:
    """Decode `steps` greedy tokens after `prompt`; return them and the logits each was chosen from.

    The model must be made with logits_all=True: llama-cpp-python only fills `scores` in that mode."""
    tokens: list[int] = []
    logits: list[np.ndarray] = []
    feed = prompt
    for _ in range(steps):
        model.eval(feed)
        logits.append(np.array(model.scores[model.n_tokens - 1], dtype=np.float32))
        tokens.append(int(np.argmax(logits[-1])))
        feed = [tokens[-1]]
    return tokens, logits
