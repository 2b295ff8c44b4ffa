"""Settings of the accounting service (settlement, roll-ups and the sweeper)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from shared.settings import WorkerSettings


class AccountingSettings(WorkerSettings):
    sweep_interval_s: float = Field(
        60.0, description="How often beat runs the sweeper of stuck jobs, seconds."
    )
    stuck_after_s: int = Field(
        1800,
        description="A live job untouched this long is stuck: the sweeper fails it and settles "
        "its reservation (keep it above task_time_limit_s).",
    )


@lru_cache
def get_accounting_settings() -> AccountingSettings:
    return AccountingSettings()
