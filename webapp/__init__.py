"""Hearth: private LLM chat whose model runs in the user's browser through WebLLM."""

__version__ = "0.1.0"
