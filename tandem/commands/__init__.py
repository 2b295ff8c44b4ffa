"""Subcommand groups of the ``tandem`` CLI, one module per group."""
