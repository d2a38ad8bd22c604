"""Hearth's own model compiler: Llama-family checkpoints -> WebGPU model libraries (TVM web runtime, linking) and MLC weights."""
