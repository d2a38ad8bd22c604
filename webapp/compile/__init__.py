"""Hearth's model compiler: Llama-family checkpoints -> WebLLM model libraries and MLC weights."""
