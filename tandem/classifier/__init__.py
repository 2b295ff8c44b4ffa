"""Offline tooling of the sufficiency classifier, behind ``tandem classifier``.

``collect`` (engines → :mod:`~tandem.classifier.collected` file), ``train`` (MLP → one ONNX
graph), ``calibrate`` (cost-aware per-level thresholds, :mod:`~tandem.classifier.thresholds`),
``evaluate`` (policies replayed offline, :mod:`~tandem.classifier.policies`) and ``activate``
(a classifier version in Postgres). Serving lives in :mod:`shared.classifier`.
"""
