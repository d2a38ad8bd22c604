"""Drive a compiled library natively (LLVM CPU target) with WebLLM's call sequence, for checking the math."""

from __future__ import annotations

from typing import Any

import numpy as np
import tvm
from tvm import relax
from tvm.runtime import ShapeTuple

# WebLLM's KV-cache page size (LLMChatPipeline: "hard coded for now").
PAGE_SIZE = 16


class NativeChat:
    """One sequence on a CPU build: prefill in chunks, decode, greedy or top-p sampling with the ABI."""

    def __init__(self, executable: relax.VMExecutable, metadata: dict[str, Any], params: dict[str, np.ndarray]):
        self.device = tvm.cpu()
        self.vm = relax.VirtualMachine(executable, self.device)
        self.chunk = metadata["prefill_chunk_size"]
        self.params = [tvm.runtime.tensor(params[p["name"]], self.device) for p in metadata["params"]]
        self._global = {
            name: tvm.get_global_func(f"vm.builtin.{name}")
            for name in ("kv_state_add_sequence", "kv_state_begin_forward", "kv_state_end_forward")
        }
        self.kv_cache = self.vm["create_tir_paged_kv_cache"](
            ShapeTuple([1]),
            ShapeTuple([metadata["context_window_size"]]),
            ShapeTuple([self.chunk]),
            ShapeTuple([PAGE_SIZE]),
            ShapeTuple([0]),
        )
        self._global["kv_state_add_sequence"](self.kv_cache, 0)

    def _forward(self, token_ids: list[int]) -> np.ndarray:
        ids = tvm.runtime.tensor(np.asarray(token_ids, dtype=np.int32), self.device)
        embeds = self.vm["embed"](ids, self.params)
        embeds = embeds._create_view(ShapeTuple([1, len(token_ids), embeds.shape[-1]]))
        self._global["kv_state_begin_forward"](self.kv_cache, ShapeTuple([0]), ShapeTuple([len(token_ids)]))
        function = self.vm["prefill"] if len(token_ids) > 1 else self.vm["decode"]
        logits, _ = function(embeds, self.kv_cache, self.params)
        self._global["kv_state_end_forward"](self.kv_cache)
        return logits.numpy().reshape(-1)

    def feed(self, token_ids: list[int]) -> np.ndarray:
        """Append tokens (chunked like WebLLM's prefill); return the logits after the last one."""
        logits = None
        for start in range(0, len(token_ids), self.chunk):
            logits = self._forward(token_ids[start : start + self.chunk])
        assert logits is not None, "feed needs at least one token"
        return logits

    def sample(self, logits: np.ndarray, temperature: float = 0.0, top_p: float = 1.0, uniform: float = 0.5) -> int:
        """Sample the way WebLLM does: softmax_with_temperature -> argsort_probs -> sample_with_top_p."""
        vocab = logits.shape[-1]
        device_logits = tvm.runtime.tensor(logits.astype(np.float32).reshape(1, 1, vocab), self.device)
        temperatures = tvm.runtime.tensor(np.array([max(temperature, 1e-6)], np.float32), self.device)
        probs = self.vm["softmax_with_temperature"](device_logits, temperatures)
        sorted_probs, sorted_indices = self.vm["argsort_probs"](probs._create_view(ShapeTuple([1, vocab])))
        token = self.vm["sample_with_top_p"](
            sorted_probs,
            sorted_indices,
            tvm.runtime.tensor(np.array([uniform], np.float32), self.device),
            tvm.runtime.tensor(np.array([0], np.int32), self.device),
            tvm.runtime.tensor(np.array([max(top_p, 1e-5)], np.float32), self.device),
        )
        return int(token.numpy()[0])

    def generate(self, prompt_ids: list[int], steps: int) -> tuple[list[int], list[np.ndarray]]:
        """Greedy decoding through the library's own sampler: (token ids, logits before each token)."""
        tokens: list[int] = []
        all_logits = []
        logits = self.feed(prompt_ids)
        for _ in range(steps):
            all_logits.append(logits)
            tokens.append(self.sample(logits))
            logits = self.feed([tokens[-1]])
        return tokens, all_logits
