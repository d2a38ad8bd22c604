"""Hearth's own model compiler: TVM web runtime build, WebGPU targets, and linking model libraries."""
