"""Serving the classifier: an onnxruntime session per version, cached for the process.

Scoring asks Postgres which version is active (one indexed row), at most every few seconds
(the scorer's ``classifier_refresh_s``); a newly activated version is therefore picked up within
that time without a restart, while the ONNX session of
a version is built only once. With no active row the model shipped in the repo is used, so the
pipeline runs from day one. The ONNX file carries its feature list, version, level schedule
(``levels``: the insight-token budgets it was calibrated on), thresholds and stop rule
(:mod:`shared.classifier.rules`) as metadata; a file from before schedules were stored takes its
schedule from its card (the collected file's header it was trained on). Its feature list names
the feature set the scorer computes for it (:func:`shared.features.feature_set_for`); a list no
set computes is refused rather than fed the wrong columns.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from shared.classifier import repository as repo
from shared.classifier.cards import read_card
from shared.classifier.rules import (
    THRESHOLD,
    RuleError,
    StopRule,
    calibrated_for,
    positional,
    rule_from_json,
)
from shared.db.models import ClassifierModel
from shared.errors import ConfigurationError
from shared.features import FeatureSet, UnknownFeatures, feature_set_for
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
    levels: tuple[int, ...] | None = None  # None: a file that names no schedule
    stop_rule: dict[str, Any] | None = None  # None: the paper's thresholds


def _card_levels(model: Path) -> tuple[int, ...] | None:
    """The schedule a card records: its own ``levels``, else its training file's header's."""
    card = read_card(model)
    levels = card.get("levels") or (card.get("trained_on") or {}).get("header", {}).get("levels")
    return tuple(int(b) for b in levels) if levels else None


def _session(path: Path) -> Any:
    """An onnxruntime session on one thread: a scoring is one small matrix product, and the
    worker's concurrency is its processes."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(
        str(path), sess_options=options, providers=["CPUExecutionProvider"]
    )


def read_metadata(path: Path) -> ModelMetadata:
    """What an exported file declares. Read through onnxruntime, which serving loads anyway:
    importing the ``onnx`` package takes about a second, which a scorer's first job waited."""
    stat = path.stat()
    return _metadata(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=32)
def _metadata(path: Path, mtime_ns: int, size: int) -> ModelMetadata:
    # Keyed by the file's stat too: exporting again (a new stop rule) is read again. Cached,
    # since with no active version the shipped file's metadata is asked for on every refresh.
    return _declared(path, _session(path))


def _declared(path: Path, session: Any) -> ModelMetadata:
    """The metadata of ``path`` as its onnxruntime ``session`` reads it."""
    props = dict(session.get_modelmeta().custom_metadata_map)
    try:
        meta = ModelMetadata(
            version=props["version"],
            feature_names=tuple(json.loads(props["feature_names"])),
            thresholds=tuple(float(t) for t in json.loads(props["thresholds"])),
            data_hash=props.get("data_hash", ""),
            levels=tuple(int(b) for b in json.loads(props["levels"]))
            if "levels" in props
            else _card_levels(path),
            stop_rule=json.loads(props["stop_rule"]) if "stop_rule" in props else None,
        )
    except KeyError as missing:
        raise ConfigurationError(
            f"classifier {path} lacks metadata {missing}; export it with tandem.classifier.train"
        ) from missing
    if meta.levels is not None:
        try:  # a rule that does not fit the schedule is refused here, not at a job's level
            rule_from_json(meta.stop_rule, meta.levels, meta.thresholds)
        except RuleError as exc:
            raise ConfigurationError(f"classifier {path}: {exc}") from exc
    return meta


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def resolve_path(path: str | Path) -> Path:
    """Relative paths in the table are relative to the repository root (the shipped models)."""
    candidate = Path(path)
    return candidate if candidate.is_absolute() else ROOT / candidate


@dataclass(frozen=True)
class Served:
    """What a version declares for serving: thresholds, schedule and stop rule (the row's, or
    the file's while no version is active)."""

    thresholds: tuple[float, ...]
    levels: tuple[int, ...] | None
    stop_rule: dict[str, Any] | None

    @cached_property
    def rule(self) -> StopRule | None:
        """The declared rule, parsed once per loaded version (None without a schedule)."""
        if self.levels is None:
            return None
        return rule_from_json(self.stop_rule, self.levels, self.thresholds)

    def rule_for(self, budgets: Sequence[int]) -> StopRule:
        """The rule to decide a job with levels ``budgets`` by: the declared one where the job's
        levels are ones the version was calibrated on (admission keeps tandem jobs so), else
        the thresholds by position, as before versions carried a schedule (a job admitted
        under an earlier version, or a version without a schedule)."""
        if (
            self.rule is not None
            and self.levels is not None
            and calibrated_for(self.levels, budgets)
        ):
            return self.rule
        return positional(budgets, self.thresholds)


@dataclass(frozen=True)
class LoadedClassifier:
    version: str
    served: Served
    session: Any  # onnxruntime.InferenceSession
    feature_set: FeatureSet

    @property
    def thresholds(self) -> tuple[float, ...]:
        return self.served.thresholds

    @property
    def levels(self) -> tuple[int, ...] | None:
        return self.served.levels

    def rule_for(self, budgets: Sequence[int]) -> StopRule:
        return self.served.rule_for(budgets)

    def score(self, vector: list[float]) -> float:
        """P(the executor answers right) for one feature vector."""
        inputs = np.asarray([vector], dtype=np.float32)
        name = self.session.get_inputs()[0].name
        (output,) = self.session.run(None, {name: inputs})
        return float(np.asarray(output).reshape(-1)[0])


def _load(path: Path, version: str, served: Served) -> LoadedClassifier:
    session = _session(path)  # one session both declares the metadata and serves
    meta = _declared(path, session)
    try:
        feature_set = feature_set_for(meta.feature_names)
    except UnknownFeatures as error:
        raise ConfigurationError(f"classifier {version}: {error}") from error
    return LoadedClassifier(version, served, session, feature_set)


@dataclass(frozen=True)
class _Active:
    """What the classifier_models table said was active, and when it was asked."""

    key: tuple[str, str]
    path: Path
    version: str
    served: Served
    read_at: float


class ClassifierRuntime:
    """Per-process cache of loaded versions; ``current(session)`` is cheap per task.

    With ``refresh_s`` > 0 the active version is asked of Postgres at most that often (a newly
    activated version applies within ``refresh_s``); with 0, on every call.
    """

    def __init__(self, default_path: Path = DEFAULT_MODEL_PATH, refresh_s: float = 0.0) -> None:
        self._default_path = default_path
        self._refresh_s = refresh_s
        self._loaded: dict[tuple[str, str], LoadedClassifier] = {}
        self._active: _Active | None = None
        self._lock = threading.Lock()

    def current(self, session: Session) -> LoadedClassifier:
        active = self._active
        if active is None or time.monotonic() - active.read_at >= self._refresh_s:
            active = self._active = self._read_active(session)
        return self._get(active.key, active.path, active.version, active.served)

    def forget_active(self) -> None:
        """Ask Postgres again on the next call (after an activation in this process)."""
        self._active = None

    def _read_active(self, session: Session) -> _Active:
        now = time.monotonic()
        row = repo.active(session)
        if row is None:
            meta = read_metadata(self._default_path)
            key = (meta.version, str(self._default_path))
            served = Served(meta.thresholds, meta.levels, meta.stop_rule)
            return _Active(key, self._default_path, meta.version, served, now)
        key = (row.version, row.sha256)
        levels = tuple(row.levels) if row.levels is not None else None
        served = Served(tuple(row.thresholds), levels, row.stop_rule)
        return _Active(key, resolve_path(row.path), row.version, served, now)

    def _get(
        self, key: tuple[str, str], path: Path, version: str, served: Served
    ) -> LoadedClassifier:
        with self._lock:
            loaded = self._loaded.get(key)
            if loaded is None or loaded.served != served:
                loaded = _load(path, version, served)
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
        levels=list(meta.levels) if meta.levels is not None else None,
        stop_rule=meta.stop_rule or {"kind": THRESHOLD},
        metrics=metrics or {},
        active=False,
    )
    session.add(row)
    session.flush()
    if activate:
        repo.activate(session, row)
    return row
