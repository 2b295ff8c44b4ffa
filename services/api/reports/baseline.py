"""The evaluation table: measured coordinator-alone cost per job, per domain.

An operator points ``TANDEM_SAVINGS_BASELINE_FILE`` at a JSON file written from an evaluation
run of the ``llm_only`` policy (every question answered by the coordinator alone)::

    {"source": "llm_only on the math and code test splits, 2026-11-28",
     "domains": {"math": {"mean_cost": "0.00123", "sample_size": 500}}}

It is re-read when the file changes, so a new evaluation needs no restart.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.errors import ConfigurationError


class BaselineEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mean_cost: Decimal = Field(ge=0, description="Mean coordinator-alone cost of one job (USD).")
    sample_size: int = Field(ge=1, description="Jobs the mean was measured on.")


class BaselineTable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field("", description="Which evaluation this is, for the report's detail.")
    domains: dict[str, BaselineEntry]


@lru_cache(maxsize=4)
def _parse(path: Path, mtime_ns: int) -> BaselineTable:
    try:
        return BaselineTable.model_validate_json(path.read_bytes())
    except (OSError, ValidationError) as exc:
        raise ConfigurationError(
            f"the savings baseline file {path} is unreadable or malformed: {exc}",
            field="TANDEM_SAVINGS_BASELINE_FILE",
        ) from None


def load_baseline(path: Path | None) -> BaselineTable | None:
    """The table at ``path`` (None when no file is configured)."""
    if path is None:
        return None
    try:
        mtime_ns = path.stat().st_mtime_ns
    except OSError:
        raise ConfigurationError(
            f"the savings baseline file {path} does not exist",
            field="TANDEM_SAVINGS_BASELINE_FILE",
        ) from None
    return _parse(path, mtime_ns)
