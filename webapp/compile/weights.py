"""Convert a checkpoint's weights into the library's parameters and write them as MLC weight shards."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from webapp.compile.gguf_quant import BlockSource
from webapp.compile.scheme import Param, Quantization
from webapp.mlc.write import write_tensor_cache

Progress = Callable[[str], None]
# A progress line every this many bytes written: often enough to see a big model move.
REPORT_EVERY_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class ConversionStats:
    """What convert_weights wrote and how fast."""

    num_tensors: int
    nbytes: int  # bytes written to the shards
    source_bytes: int  # float32 bytes read from the checkpoint
    seconds: float

    @property
    def megabytes_per_second(self) -> float:
        """Output throughput in MB/s (10^6 bytes)."""
        return self.nbytes / 1e6 / max(self.seconds, 1e-9)


def convert_weights(
    load: Callable[[str], np.ndarray],
    params: list[Param],
    quantization: Quantization,
    directory: Path,
    progress: Progress,
    blocks: BlockSource | None = None,
) -> ConversionStats:
    """Quantize/cast every library parameter from `load` (float weights by name) into `directory`.

    `blocks` gives a GGUF's stored blocks, which q4f32_gguf keeps as they are.
    """
    start = time.monotonic()
    source_bytes = 0
    written = 0
    next_report = REPORT_EVERY_BYTES

    def counted_load(name: str) -> np.ndarray:
        nonlocal source_bytes
        array = load(name)
        source_bytes += array.nbytes
        return array

    def tensors() -> Iterator[tuple[str, np.ndarray]]:
        nonlocal written, next_report
        for name, array in quantization.convert(params, counted_load, blocks):
            yield name, array
            written += array.nbytes
            if written >= next_report:
                progress(f"converted {written / 1e6:.0f} MB of weights")
                next_report += REPORT_EVERY_BYTES

    stats = write_tensor_cache(directory, tensors())
    return ConversionStats(stats.num_tensors, stats.nbytes, source_bytes, time.monotonic() - start)
