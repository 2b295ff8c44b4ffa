"""Budget periods are keys ("2026-11", "2026-11-28", "total"), so nothing resets on a schedule."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.db.models import BudgetPeriod


def period_key(kind: BudgetPeriod | str, now: datetime | None = None) -> str:
    """The key of the period ``now`` (UTC) falls in."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    match BudgetPeriod(kind):
        case BudgetPeriod.MONTHLY:
            return now.strftime("%Y-%m")
        case BudgetPeriod.DAILY:
            return now.strftime("%Y-%m-%d")
        case BudgetPeriod.TOTAL:
            return "total"
