"""Serving the classifier: an onnxruntime session per version, cached for the process.

Each scoring task asks Postgres which version is active (one indexed row); a newly activated
version is therefore picked up by the next task without a restart, while the ONNX session of
a version is built only once. With no active row the model shipped in the repo is used, so the
pipeline runs from day one. The ONNX file carries its feature list, version and thresholds as
metadata; a file whose feature list differs from :data:`shared.features.FEATURE_NAMES` is
refused rather than fed the wrong columns.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from shared.classifier import repository as repo
from shared.db.models import ClassifierModel
from shared.errors import ConfigurationError
from shared.features import FEATURE_NAMES
from shared.shipped_models import DEFAULT_MODEL_PATH, LAB_MODEL_PATH, ROOT, SIM_MODEL_PATH

__all__ = [  # the shipped files' paths are re-exported: serving code names them from here
    "DEFAULT_MODEL_PATH",
    "LAB_MODEL_PATH",
    "ROOT",
    "SIM_MODEL_PATH",
    "ClassifierRuntime",
    "LoadedClassifier",
    "ModelMetadata",
    "read_metadata",
    "register_version",
    "resolve_path",
    "sha256_of",
]


@dataclass(frozen=True)
class ModelMetadata:
    version: str
    feature_names: tuple[str, ...]
    thresholds: tuple[float, ...]
    data_hash: str


def read_metadata(path: Path) -> ModelMetadata:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    props = {p.key: p.value for p in model.metadata_props}
    try:
        return ModelMetadata(
            version=props["version"],
            feature_names=tuple(json.loads(props["feature_names"])),
            thresholds=tuple(float(t) for t in json.loads(props["thresholds"])),
            data_hash=props.get("data_hash", ""),
        )
    except KeyError as missing:
        raise ConfigurationError(
            f"classifier {path} lacks metadata {missing}; export it with tandem.classifier.train"
        ) from missing


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def resolve_path(path: str | Path) -> Path:
    """Relative paths in the table are relative to the repository root (the shipped models)."""
    candidate = Path(path)
    return candidate if candidate.is_absolute() else ROOT / candidate


@dataclass(frozen=True)
class LoadedClassifier:
    version: str
    thresholds: tuple[float, ...]
    session: Any  # onnxruntime.InferenceSession

    def threshold(self, level: int) -> float:
        """tau[level]; levels past the fitted list reuse the last threshold."""
        return self.thresholds[min(level, len(self.thresholds) - 1)]

    def score(self, vector: list[float]) -> float:
        """P(the executor answers right) for one feature vector."""
        inputs = np.asarray([vector], dtype=np.float32)
        name = self.session.get_inputs()[0].name
        (output,) = self.session.run(None, {name: inputs})
        return float(np.asarray(output).reshape(-1)[0])


def _load(path: Path, version: str, thresholds: tuple[float, ...]) -> LoadedClassifier:
    import onnxruntime

    meta = read_metadata(path)
    if meta.feature_names != FEATURE_NAMES:
        raise ConfigurationError(
            f"classifier {version} was trained on features {list(meta.feature_names)}, the "
            f"scorer computes {list(FEATURE_NAMES)}; retrain it with tandem.classifier.train"
        )
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    return LoadedClassifier(version, thresholds, session)


class ClassifierRuntime:
    """Per-process cache of loaded versions; ``current(session)`` is cheap per task."""

    def __init__(self, default_path: Path = DEFAULT_MODEL_PATH) -> None:
        self._default_path = default_path
        self._loaded: dict[tuple[str, str], LoadedClassifier] = {}
        self._lock = threading.Lock()

    def current(self, session: Session) -> LoadedClassifier:
        row = repo.active(session)
        if row is None:
            meta = read_metadata(self._default_path)
            key = (meta.version, str(self._default_path))
            return self._get(key, self._default_path, meta.version, meta.thresholds)
        key = (row.version, row.sha256)
        return self._get(key, resolve_path(row.path), row.version, tuple(row.thresholds))

    def _get(
        self, key: tuple[str, str], path: Path, version: str, thresholds: tuple[float, ...]
    ) -> LoadedClassifier:
        with self._lock:
            loaded = self._loaded.get(key)
            if loaded is None or loaded.thresholds != thresholds:
                loaded = _load(path, version, thresholds)
                self._loaded[key] = loaded
            return loaded


def register_version(
    session: Session,
    path: Path,
    *,
    version: str | None = None,
    thresholds: list[float] | None = None,
    metrics: dict[str, Any] | None = None,
    activate: bool = True,
) -> ClassifierModel:
    """Record an exported model as a classifier version (optionally the active one)."""
    meta = read_metadata(path)
    row = ClassifierModel(
        version=version or meta.version,
        sha256=sha256_of(path),
        path=str(path.resolve().relative_to(ROOT))
        if path.resolve().is_relative_to(ROOT)
        else str(path.resolve()),
        feature_names=list(meta.feature_names),
        thresholds=list(thresholds if thresholds is not None else meta.thresholds),
        metrics=metrics or {},
        active=False,
    )
    session.add(row)
    session.flush()
    if activate:
        repo.activate(session, row)
    return row
