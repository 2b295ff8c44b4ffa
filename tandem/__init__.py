"""The ``tandem`` operator tool: CLI, local stack, offline training and evaluation."""
