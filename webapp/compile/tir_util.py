"""TVMScript helpers shared by the hand-written kernels (logit processors, sort)."""

from __future__ import annotations

from tvm.script import tirx as T


@T.macro(hygienic=False)
def for_each(count, threads, body, args):
    """Run body(*args, i) for i < count: one GPU thread each, or a plain loop when threads == 1 (CPU)."""
    if threads > 1:
        for bx in T.thread_binding((count + threads - 1) // threads, "blockIdx.x"):
            for tx in T.thread_binding(threads, "threadIdx.x"):
                if bx * threads + tx < count:
                    body(*args, bx * threads + tx)
    else:
        for i in range(count):
            body(*args, i)
