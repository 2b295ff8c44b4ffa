"""The sufficiency classifier at serving time: the active ONNX version, loaded once per process.

See :mod:`shared.classifier.runtime`. Training lives in :mod:`tandem.classifier.train`.
"""

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
