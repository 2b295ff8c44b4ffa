"""Activate: a model file becomes the one active classifier version in Postgres.

The scorer asks which version is active at every scoring task (one indexed row) and keeps an
ONNX session per (version, sha256), so the next task after activation uses the new version,
without a restart (:class:`shared.classifier.ClassifierRuntime`). A version name is bound to
one file: registering other bytes under a known name is refused, re-activating it is not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from shared.classifier import read_metadata, register_version
from shared.classifier import repository as repo
from shared.classifier.runtime import sha256_of
from shared.db.models import ClassifierModel
from shared.errors import NotFoundError, ValidationFailed
from shared.features import UnknownFeatures, feature_set_for
from tandem.classifier.model_files import read_card

# Card sections recorded as the version's metrics.
METRIC_SECTIONS = ("data_hash", "trained_on", "training", "calibration", "evaluation")


def metrics_of(model: Path) -> dict[str, Any]:
    card = read_card(model)
    return {key: card[key] for key in METRIC_SECTIONS if card.get(key) is not None}


def activate_model(session: Session, model: Path, version: str | None = None) -> ClassifierModel:
    """Register ``model`` (unless this exact file is already that version) and activate it."""
    meta = read_metadata(model)
    try:
        feature_set_for(meta.feature_names)
    except UnknownFeatures as error:
        raise ValidationFailed(f"{model}: {error}", field="model") from error
    name = version or meta.version
    existing = repo.by_version(session, name)
    if existing is not None:
        if existing.sha256 != sha256_of(model):
            raise ValidationFailed(
                f"version {name!r} is already registered with another file "
                f"(sha256 {existing.sha256[:12]}…); choose a new --version",
                field="version",
            )
        repo.activate(session, existing)
        return existing
    return register_version(
        session, model, version=name, metrics=metrics_of(model), thresholds=list(meta.thresholds)
    )


def activate_version(session: Session, version: str) -> ClassifierModel:
    """Make an already registered version the active one again (a rollback)."""
    row = repo.by_version(session, version)
    if row is None:
        raise NotFoundError(f"no classifier version {version!r} is registered", field="version")
    repo.activate(session, row)
    return row
