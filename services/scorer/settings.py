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


@lru_cache
def get_scorer_settings() -> ScorerSettings:
    return ScorerSettings()
