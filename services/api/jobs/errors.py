"""Errors of the job routes beyond the shared hierarchy."""

from __future__ import annotations

from collections.abc import Sequence

from shared.errors import ValidationFailed
from shared.tenants import Conflict


class IdempotencyConflict(Conflict):
    """The Idempotency-Key was first used for a different request."""

    code = "idempotency_key_reused"

    def __init__(self, key: str) -> None:
        super().__init__(
            f"Idempotency-Key {key!r} was already used for a different request (another "
            "question, plan, max_cost, metadata or webhook); send a new key for a new request",
            field="Idempotency-Key",
            idempotency_key=key,
        )


class LevelsNotCalibrated(ValidationFailed):
    """A tandem job's own levels are not the schedule the active classifier was calibrated on
    (its thresholds and stop rule are per token budget of that schedule)."""

    code = "levels_not_calibrated"

    def __init__(self, requested: Sequence[int], version: str, schedule: Sequence[int]) -> None:
        super().__init__(
            f"levels {list(requested)} are not a schedule classifier {version} was calibrated "
            f"on: its levels are {list(schedule)} (send those, a prefix of them, or no levels)",
            field="levels",
            classifier_version=version,
            calibrated_levels=list(schedule),
        )
