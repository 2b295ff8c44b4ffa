"""Offline tooling of the sufficiency classifier (training, and the data it is trained on)."""
