"""What every quantization scheme is: a row of quantize.QUANTIZATIONS with quantize_model() and convert()."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from webapp.compile.errors import CompileError

if TYPE_CHECKING:
    from tvm.relax.frontend import nn

    from webapp.compile.gguf_quant import BlockSource

# The leaf names of a quantized layer's stored arrays; "x.weight" of the float model becomes these.
QUANTIZED_LEAVES = ("q_weight", "q_scale", "q_scale_min")


class QuantizationError(CompileError):
    """A quantization name or a weight shape that Hearth cannot quantize; the message says what to fix."""


@dataclass(frozen=True)
class Param:
    """One weight the library takes, in the order of its packed params argument."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def nbytes(self) -> int:
        """Bytes of this tensor in the weight shards."""
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


@dataclass(frozen=True)
class Quantization:
    """One quantization scheme, named as mlc-llm names it (q<bits>f<float bits>_<layout>).

    A scheme rewrites the float model definition into its stored form (quantize_model) and turns
    float weights into the arrays that form stores (convert); each subclass fills in both.
    """

    name: str
    dtype: Literal["float32", "float16"]  # activations, norms, biases and scales

    @property
    def needs_shader_f16(self) -> bool:
        """True when the library computes in float16 (WebGPU feature shader-f16)."""
        return self.dtype == "float16"

    def quantize_model(self, model: nn.Module) -> nn.Module:
        """The model with its Linear and Embedding layers in this scheme's stored form (in place)."""
        raise NotImplementedError

    def quantize_layer(
        self, prefix: str, leaves: set[str], load: Callable[[str], np.ndarray], blocks: BlockSource | None
    ) -> dict[str, np.ndarray]:
        """The stored arrays of one quantized layer ("<prefix>.<leaf>" for each of `leaves`)."""
        raise QuantizationError(f"{self.name} stores no quantized layers, but the library has {prefix}")

    def convert(
        self, params: Sequence[Param], load: Callable[[str], np.ndarray], blocks: BlockSource | None = None
    ) -> Iterator[tuple[str, np.ndarray]]:
        """Yield the array for each library parameter, in order.

        load(name) gives a float weight by the float model's parameter name. A quantized layer's
        arrays come from quantize_layer, once per layer; every other name is loaded and cast.
        `blocks` (a GGUF's loader) gives stored blocks, which a scheme may keep as they are.
        """
        leaves_by_prefix: dict[str, set[str]] = {}
        for param in params:
            prefix, _, leaf = param.name.rpartition(".")
            if leaf in QUANTIZED_LEAVES:
                leaves_by_prefix.setdefault(prefix, set()).add(leaf)
        quantized: dict[str, np.ndarray] = {}
        for param in params:
            prefix, _, leaf = param.name.rpartition(".")
            if param.name not in quantized and leaf in QUANTIZED_LEAVES:
                quantized = self.quantize_layer(prefix, leaves_by_prefix[prefix], load, blocks)
            if param.name in quantized:
                array = quantized.pop(param.name)
            else:
                array = np.ascontiguousarray(load(param.name).astype(param.dtype))
            if tuple(array.shape) != tuple(param.shape) or str(array.dtype) != param.dtype:
                raise QuantizationError(
                    f"weight {param.name} converts to {array.dtype}{list(array.shape)} "
                    f"but the library expects {param.dtype}{list(param.shape)}"
                )
            yield param.name, array


def swap_layers(
    model: nn.Module, scheme: Quantization, block: int, instead: str, linear: Callable, embedding: Callable
) -> nn.Module:
    """Replace every nn.Linear with linear(node) and nn.Embedding with embedding(node), in place.

    Each layer's input width must split into blocks of `block` values; if not, the message names the
    layer and the schemes to use `instead`.
    """
    from tvm.relax.frontend import nn

    def check(path: str, cols: int) -> None:
        if cols % block:
            raise QuantizationError(
                f"{path} has {cols} input columns, not a multiple of {block}: {scheme.name} cannot store it; "
                f"use {instead} for this model"
            )

    class _Swap(nn.Mutator):
        def visit_module(self, name: str, node: nn.Module) -> nn.Module:
            if isinstance(node, nn.Linear):
                check(name, node.in_features)
                return linear(node)
            if isinstance(node, nn.Embedding):
                check(name, node.dim)
                return embedding(node)
            return self.visit(name, node)

    return _Swap().visit("", model)
