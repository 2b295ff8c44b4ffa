"""The sufficiency classifier at serving time: the active ONNX version, loaded once per process.

See :mod:`shared.classifier.runtime`. Training lives in :mod:`tandem.classifier.train`.

The names below are loaded on first use: the API and the workers other than the scorer import
this package's light modules (``rules``, ``schedules``, ``repository``) and must not pull in
numpy and onnxruntime, which their images do not carry.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.classifier.runtime import (
        DEFAULT_MODEL_PATH,
        LAB_MODEL_PATH,
        SIM_MODEL_PATH,
        ClassifierRuntime,
        LoadedClassifier,
        ModelMetadata,
        read_metadata,
        register_version,
    )

__all__ = [
    "DEFAULT_MODEL_PATH",
    "LAB_MODEL_PATH",
    "SIM_MODEL_PATH",
    "ClassifierRuntime",
    "LoadedClassifier",
    "ModelMetadata",
    "read_metadata",
    "register_version",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(import_module("shared.classifier.runtime"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
