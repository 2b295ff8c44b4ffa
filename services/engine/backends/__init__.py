"""Backends of the local engine: ``gguf`` (real models, torch) and ``sim`` (test double)."""
