"""Clients of the inference engines (TGI, OpenAI-compatible) behind one async interface."""
