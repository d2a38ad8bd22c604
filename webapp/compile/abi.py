"""The model-library ABI WebLLM 0.2.86 calls, beyond the model's own embed/prefill/decode.

LLMChatPipeline looks these up by name on the VM (see its constructor and sampleFromRawLogits):
  _metadata()                                     -> JSON string: params in load order, prefill_chunk_size...
  softmax_with_temperature(logits[b,1,v], t[b])   -> probs[b,1,v]; t <= 1e-5 means greedy
  argsort_probs(probs[b,v])                       -> (sorted_probs[b,v], sorted_indices[b,v] int32)
  sample_with_top_p(sorted_probs, sorted_indices, uniform[n], sample_indices[n] int32, top_p[b]) -> token[n] int32
  apply_bitmask_inplace(logits[b,v], seq_ids[s], bitmask[b, ceil(v/32)] int32)
  apply_penalty_inplace(logits[b,v], seq_ids[s], pos2seq[t], token_ids[t], counts[t], penalties[s,3])
  apply_logit_bias_inplace(logits[b,v], pos2seq[t], token_ids[t], bias[t])
"""

from __future__ import annotations

import json
from typing import Any

import tvm
from tvm import relax, tirx
from tvm.relax.frontend import nn
from tvm.relax.frontend.nn import op
from tvm.script import tirx as T

from webapp.compile.sampling import sample_top_p
from webapp.compile.sort import argsort_descending
from webapp.compile.tir_util import for_each

# The functions this module adds, by name.
ABI_FUNCTIONS = (
    "_metadata",
    "softmax_with_temperature",
    "argsort_probs",
    "sample_with_top_p",
    "apply_bitmask_inplace",
    "apply_penalty_inplace",
    "apply_logit_bias_inplace",
)
# WebLLM passes temperature max(1e-6, t): anything at or below this is greedy decoding.
GREEDY_TEMPERATURE = 1e-5


# ---- logit processors: in-place TIR kernels, one thread per element ----


@T.macro
def _logit_bias_body(logits, pos2seq_id, token_ids, logit_bias, i):
    logits[pos2seq_id[i], token_ids[i]] += logit_bias[i]


@T.macro
def _penalty_body(logits, seq_ids, pos2seq_id, token_ids, token_cnt, penalties, i):
    # penalties[s] = (presence, frequency, repetition), as OpenAI and mlc-llm define them.
    seq = pos2seq_id[i]
    row = seq_ids[seq]
    logits[row, token_ids[i]] -= penalties[seq, 0] + T.Cast("float32", token_cnt[i]) * penalties[seq, 1]
    logits[row, token_ids[i]] = T.if_then_else(
        logits[row, token_ids[i]] < T.float32(0),
        logits[row, token_ids[i]] * penalties[seq, 2],
        logits[row, token_ids[i]] / penalties[seq, 2],
    )


@T.macro
def _bitmask_body(logits, seq_ids, bitmask, vocab_size, i):
    row = seq_ids[i // vocab_size]
    token = i % vocab_size
    allowed = T.bitwise_and(T.shift_right(bitmask[row, token // 32], token % 32), 1) == 1
    logits[row, token] = T.if_then_else(allowed, logits[row, token], T.min_value("float32"))


def _logit_processors(threads: int) -> dict[str, tirx.PrimFunc]:
    @T.prim_func(s_tir=True)
    def apply_logit_bias_inplace(
        var_logits: T.handle, var_pos2seq_id: T.handle, var_token_ids: T.handle, var_bias: T.handle
    ):
        T.func_attr({"tirx.noalias": True, "tirx.is_scheduled": True})
        batch_size, vocab_size, num_token = T.int32(), T.int32(), T.int32()
        logits = T.match_buffer(var_logits, (batch_size, vocab_size), "float32")
        pos2seq_id = T.match_buffer(var_pos2seq_id, (num_token,), "int32")
        token_ids = T.match_buffer(var_token_ids, (num_token,), "int32")
        bias = T.match_buffer(var_bias, (num_token,), "float32")
        for_each(num_token, threads, _logit_bias_body, (logits, pos2seq_id, token_ids, bias))

    @T.prim_func(s_tir=True)
    def apply_penalty_inplace(
        var_logits: T.handle,
        var_seq_ids: T.handle,
        var_pos2seq_id: T.handle,
        var_token_ids: T.handle,
        var_token_cnt: T.handle,
        var_penalties: T.handle,
    ):
        T.func_attr({"tirx.noalias": True, "tirx.is_scheduled": True})
        batch_size, vocab_size, num_token, num_seq = T.int32(), T.int32(), T.int32(), T.int32()
        logits = T.match_buffer(var_logits, (batch_size, vocab_size), "float32")
        seq_ids = T.match_buffer(var_seq_ids, (num_seq,), "int32")
        pos2seq_id = T.match_buffer(var_pos2seq_id, (num_token,), "int32")
        token_ids = T.match_buffer(var_token_ids, (num_token,), "int32")
        token_cnt = T.match_buffer(var_token_cnt, (num_token,), "int32")
        penalties = T.match_buffer(var_penalties, (num_seq, 3), "float32")
        for_each(
            num_token, threads, _penalty_body, (logits, seq_ids, pos2seq_id, token_ids, token_cnt, penalties)
        )

    @T.prim_func(s_tir=True)
    def apply_bitmask_inplace(var_logits: T.handle, var_seq_ids: T.handle, var_bitmask: T.handle):
        T.func_attr({"tirx.noalias": True, "tirx.is_scheduled": True})
        batch_size, vocab_size, num_seq = T.int32(), T.int32(), T.int32()
        logits = T.match_buffer(var_logits, (batch_size, vocab_size), "float32")
        seq_ids = T.match_buffer(var_seq_ids, (num_seq,), "int32")
        bitmask = T.match_buffer(var_bitmask, (batch_size, (vocab_size + 31) // 32), "int32")
        for_each(num_seq * vocab_size, threads, _bitmask_body, (logits, seq_ids, bitmask, vocab_size))

    return {
        "apply_logit_bias_inplace": apply_logit_bias_inplace,
        "apply_penalty_inplace": apply_penalty_inplace,
        "apply_bitmask_inplace": apply_bitmask_inplace,
    }


# ---- sampling: softmax from nn ops (scheduled by dlight), argsort and top-p as hand-written kernels ----


def _softmax_with_temperature(logits: nn.Tensor, temperature: nn.Tensor) -> nn.Tensor:
    batch, _, vocab = logits.shape
    x = op.reshape(logits, (batch, vocab))
    greedy = (op.reshape(temperature, (batch, 1)) <= GREEDY_TEMPERATURE).astype("float32")
    # Greedy rows divide by 1 and keep only the maxima (ties share the mass), so argmax is exact.
    scaled = x / (op.reshape(temperature, (batch, 1)) * (1.0 - greedy) + greedy)
    peak = op.max(scaled, axis=-1, keepdims=True)
    is_peak = op.equal(scaled, peak).astype("float32")
    weights = is_peak * greedy + op.exp(scaled - peak) * (1.0 - greedy)
    probs = weights / op.sum(weights, axis=-1, keepdims=True)
    return op.reshape(probs, (batch, 1, vocab))


def _argsort_probs(threads: int):
    def argsort_probs(probs: nn.Tensor) -> tuple[nn.Tensor, nn.Tensor]:
        batch, vocab = probs.shape
        return op.tensor_ir_op(
            argsort_descending(int(vocab), threads),
            "argsort_descending",
            args=[probs],
            out=[nn.Tensor.placeholder((batch, vocab), "float32"), nn.Tensor.placeholder((batch, vocab), "int32")],
        )

    return argsort_probs


def _sample_with_top_p(threads: int):
    def sample_with_top_p(sorted_probs, sorted_indices, uniform_samples, sample_indices, top_p) -> nn.Tensor:
        vocab = int(sorted_probs.shape[1])
        return op.tensor_ir_op(
            sample_top_p(vocab, threads),
            "sample_top_p",
            args=[sorted_probs, sorted_indices, uniform_samples, sample_indices, top_p],
            out=nn.Tensor.placeholder(uniform_samples.shape, "int32"),
        )

    return sample_with_top_p


def _add_relax_function(bb: relax.BlockBuilder, name: str, body, arg_types: list[tuple[str, relax.Type]]) -> None:
    params = [relax.Var(arg, ty) for arg, ty in arg_types]
    with bb.function(name, params):
        with bb.dataflow():
            result = body(*(nn.Tensor(_expr=param) for param in params))
            if isinstance(result, tuple):
                output = bb.emit_output(relax.Tuple([tensor._expr for tensor in result]))
            else:
                output = bb.emit_output(result._expr)
        bb.emit_func_output(output)


def attach_abi(mod: tvm.IRModule, target: tvm.target.Target, vocab: int, metadata: dict[str, Any]) -> tvm.IRModule:
    """Add the sampling and logit-processing functions and _metadata to an exported model module."""
    bb = relax.BlockBuilder(mod)
    threads = 1 if target.kind.name == "llvm" else int(target.attrs["max_num_threads"])
    batch, count = tirx.Var("batch_size", "int64"), tirx.Var("num_samples", "int64")
    f32 = "float32"
    _add_relax_function(
        bb,
        "softmax_with_temperature",
        _softmax_with_temperature,
        [("logits", relax.TensorType((batch, 1, vocab), f32)), ("temperature", relax.TensorType((batch,), f32))],
    )
    _add_relax_function(
        bb, "argsort_probs", _argsort_probs(threads), [("probs", relax.TensorType((batch, vocab), f32))]
    )
    _add_relax_function(
        bb,
        "sample_with_top_p",
        _sample_with_top_p(threads),
        [
            ("sorted_probs", relax.TensorType((batch, vocab), f32)),
            ("sorted_indices", relax.TensorType((batch, vocab), "int32")),
            ("uniform_samples", relax.TensorType((count,), f32)),
            ("sample_indices", relax.TensorType((count,), "int32")),
            ("top_p", relax.TensorType((batch,), f32)),
        ],
    )
    with bb.function("_metadata", []):
        bb.emit_func_output(tvm.ir.StringImm(json.dumps(metadata, sort_keys=True)))
    mod = bb.finalize()
    for name, func in _logit_processors(threads).items():
        mod[name] = func.with_attr("global_symbol", name)
    return mod
