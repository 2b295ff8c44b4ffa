"""Settings of the scorer service."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field

from shared.classifier import DEFAULT_MODEL_PATH
from shared.classifier.runtime import ROOT
from shared.settings import WorkerSettings


class ScorerSettings(WorkerSettings):
    classifier_default_path: Path = Field(
        DEFAULT_MODEL_PATH.relative_to(ROOT),
        description="ONNX classifier used while no version is active in classifier_models "
        "(a relative path is relative to the repository root).",
    )
    classifier_refresh_s: float = Field(
        5.0,
        ge=0,
        description="How long a scorer or API process keeps the active classifier version "
        "(the API: its level schedule) before asking Postgres again: an activation takes effect "
        "within this time (0: on every use).",
    )


@lru_cache
def get_scorer_settings() -> ScorerSettings:
    return ScorerSettings()
