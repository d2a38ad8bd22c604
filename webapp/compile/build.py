"""Model definition -> Relax IRModule -> optimised, scheduled VM executable for one target."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import tvm
from tvm import relax
from tvm.relax.frontend import nn

from webapp.compile.abi import ABI_FUNCTIONS, attach_abi
from webapp.compile.architectures import Architecture, architecture
from webapp.compile.fusion import FuseDequantizeMatmul
from webapp.compile.memory import AttachMemoryUsage
from webapp.compile.mlp_fusion import FuseGatedMLP
from webapp.compile.norm_fusion import FuseNormAddNorm
from webapp.compile.precise_math import use_precise_sin_cos
from webapp.compile.schedule_sets import FALLBACK, ScheduleSet, building, current
from webapp.compile.scheme import Param, Quantization
from webapp.compile.unused_attention import DropUnusedAttention

# The functions WebLLM calls; everything else in the module is reachable from them.
ENTRY_FUNCTIONS = ("embed", "prefill", "decode", "create_tir_paged_kv_cache", *ABI_FUNCTIONS)
# One chat at a time: WebLLM creates the KV cache with max_num_sequence = 1.
MAX_BATCH_SIZE = 1


@dataclass(frozen=True)
class ModelDefinition:
    """A family's model, built once for one configuration and quantization, and what it was built into."""

    architecture: Architecture
    config: Any  # the family's config dataclass (model_type, sizes, context_window_size...)
    quantization: Quantization
    float_shapes: dict[str, tuple[int, ...]]  # the float model's parameters: what the weight loader provides
    module: nn.Module  # the quantized model, ready to export
    params: list[Param]  # the library's parameters, in load order


@dataclass(frozen=True)
class Library:
    """A model compiled for one target: the VM executable, its _metadata(), and its parameters."""

    executable: relax.VMExecutable
    metadata: dict[str, Any]
    params: list[Param]
    schedule_set: ScheduleSet


def _shapes(module: nn.Module) -> list[tuple[str, tuple[int, ...], str]]:
    return [(name, tuple(int(d) for d in p.shape), p.dtype) for name, p in module.named_parameters()]


def define_model(config: Any, quantization: Quantization) -> ModelDefinition:
    """Build the family's model for a configuration once, and quantize it."""
    arch = architecture(config.model_type)
    module = arch.model(config, quantization.dtype)
    float_shapes = {name: shape for name, shape, _ in _shapes(module)}
    module = quantization.quantize_model(module)
    params = [Param(name, shape, dtype) for name, shape, dtype in _shapes(module)]
    return ModelDefinition(arch, config, quantization, float_shapes, module, params)


def metadata(definition: ModelDefinition) -> dict[str, Any]:
    """What _metadata() returns; WebLLM reads params, prefill_chunk_size and kv_state_kind."""
    config = definition.config
    return {
        "model_type": config.model_type,
        "quantization": definition.quantization.name,
        "context_window_size": config.context_window_size,
        "sliding_window_size": -1,
        "attention_sink_size": -1,
        "prefill_chunk_size": config.prefill_chunk_size,
        "tensor_parallel_shards": 1,
        "pipeline_parallel_stages": 1,
        "kv_state_kind": "kv_cache",
        "max_batch_size": MAX_BATCH_SIZE,
        "params": [{"name": p.name, "shape": list(p.shape), "dtype": p.dtype} for p in definition.params],
        "kv_cache": {
            "num_hidden_layers": config.num_hidden_layers,
            "num_attention_heads": config.num_attention_heads,
            "num_key_value_heads": config.num_key_value_heads,
            "head_dim": config.head_dim,
        },
    }


def export_module(definition: ModelDefinition, target: tvm.target.Target) -> tuple[tvm.IRModule, dict[str, Any]]:
    """The model plus WebLLM's ABI functions as one Relax IRModule, and its metadata."""
    module, config = definition.module, definition.config
    with target:
        mod, named_params = module.export_tvm(spec=module.export_spec())
    exported = [Param(name, tuple(int(d) for d in p.shape), p.dtype) for name, p in named_params]
    assert exported == definition.params, "the packed params argument must be in load order"
    meta = metadata(definition)
    mod = attach_abi(mod, target, config.vocab_size, meta)
    # Bounds let memory planning size symbolic buffers statically (one allocation, reused).
    bounds = {
        "seq_len": config.prefill_chunk_size,
        "total_seq_len": config.context_window_size,
        "batch_size": MAX_BATCH_SIZE,
        "num_samples": MAX_BATCH_SIZE,
    }
    for name in ("embed", "prefill", "decode", "softmax_with_temperature", "argsort_probs", "sample_with_top_p"):
        mod[name] = mod[name].with_attr("tir_var_upper_bound", bounds)
    return mod, meta


def _schedule(target: tvm.target.Target) -> tvm.transform.Pass:
    if target.kind.name == "llvm":
        # The CPU build only checks the math; dlight's CPU GEMV makes LLVM take minutes per kernel.
        return tvm.transform.Sequential([])
    return current().schedule()  # the library's set: webapp.compile.schedule_sets


def pipeline(
    target: tvm.target.Target, meta: dict[str, Any], entry_functions: tuple[str, ...] = ENTRY_FUNCTIONS
) -> tvm.transform.Pass:
    """The Relax pipeline: fuse, lower to TIR, schedule with dlight, plan memory, lower to VM code."""
    gpu = target.kind.name != "llvm"
    passes = [
        DropUnusedAttention(),  # the cache's sliding-window and tree-mask kernels, when never called
        relax.transform.DeadCodeElimination(list(entry_functions)),
        # x @ permute(w) -> one NT matmul kernel; the dequantize producer then fuses into it.
        relax.transform.FuseTransposeMatmul(),
        FuseGatedMLP(),  # a decode step's gate/up projection and silu(gate) * up: one kernel
        FuseNormAddNorm(target),  # a post-norm, the residual add and the next norm: one kernel (Gemma)
        relax.backend.DispatchSampling(),
        relax.backend.DispatchSortScan(),
        relax.transform.LegalizeOps(),
        relax.transform.AnnotateTIROpPattern(),
        relax.transform.FoldConstant(),
        relax.transform.FuseOps(),
        relax.transform.FuseTIR(),
        FuseDequantizeMatmul(),
        relax.transform.DeadCodeElimination(list(entry_functions)),
        _schedule(target),
        # WGSL has no 64-bit integers: index arithmetic must fit in i32.
        tvm.tirx.transform.ForceNarrowIndexToInt32() if gpu else tvm.transform.Sequential([]),
        relax.transform.RewriteDataflowReshape(),
        relax.transform.ToNonDataflow(),
        relax.transform.RemovePurityChecking(),
        relax.transform.CallTIRRewrite(),
        relax.transform.StaticPlanBlockMemory(),
        AttachMemoryUsage(meta),
        relax.transform.LowerAllocTensor(),
        relax.transform.KillAfterLastUse(),
        relax.transform.LowerRuntimeBuiltin(),
        relax.transform.ComputePrimValue(),
        relax.transform.VMShapeLower(),
        relax.transform.AttachGlobalSymbol(),
    ]
    return tvm.transform.Sequential(passes, name="hearth_pipeline")


def build_library(
    definition: ModelDefinition, target: tvm.target.Target, schedule_set: ScheduleSet = FALLBACK
) -> Library:
    """Compile the model and its ABI for a target, its GPU kernels scheduled by one schedule set."""
    with building(schedule_set):  # the model's KV cache asks which attention kernels to take
        mod, meta = export_module(definition, target)
        if target.kind.name == "webgpu":
            use_precise_sin_cos()
        # TVM 0.27's CommonSubexprElim breaks the paged-KV prefill kernels for WebGPU when Llama 3's
        # RoPE scaling is compiled in ("variable cse_v24 has been used before definition"); the WGSL
        # compiler eliminates common subexpressions itself.
        with target, tvm.transform.PassContext(config={"tirx.disable_cse_tir": target.kind.name == "webgpu"}):
            executable = relax.build(mod, target=target, relax_pipeline=pipeline(target, meta))
    return Library(executable, meta, definition.params, schedule_set)
