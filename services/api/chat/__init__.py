"""The OpenAI-compatible chat completions front door."""
