"""The local TGI-compatible inference server (``tandem engine serve``).

Speaks TGI's HTTP API (and the OpenAI completions subset the OpenAI-compatible adapter uses) in
front of one of two backends: real small models on the CPU (``gguf``) or the simulator test
double (``sim``). Nothing heavy is imported here: the settings walk imports this package.
"""
