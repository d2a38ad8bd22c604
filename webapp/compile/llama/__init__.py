"""The Llama family (Llama, Qwen2): configuration, model definition and weight loader."""
