"""Settings of the accounting service (settlement, roll-ups and the sweeper)."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from pydantic import Field, model_validator

from shared.db.models import Domain
from shared.settings import WorkerSettings


class AccountingSettings(WorkerSettings):
    sweep_interval_s: float = Field(
        60.0, description="How often beat runs the sweeper of stuck jobs, seconds."
    )
    stuck_after_s: int = Field(
        1500,
        description="A live job untouched this long, neither retrying nor behind a backlog, "
        "has lost its message: the sweeper sends its step again (twice since the job last "
        "moved), then fails it and settles its reservation. A job behind a backlog has its step "
        "sent again every two horizons and is never failed for waiting. Above task_expires_s, so "
        "a message still due is never doubted.",
    )

    shadow_fraction: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="Share of succeeded tandem jobs answered again by the coordinator alone "
        "(llm_only) on the operator's account, so the savings report measures what Tandem "
        "saved on the tenants' own questions; 0: none.",
    )
    shadow_domain_fractions: dict[Domain, float] = Field(
        default_factory=dict,
        description='Per-domain shares overriding shadow_fraction, as JSON: {"code": 0.2}.',
    )
    shadow_tenant: str = Field(
        "shadow-runs",
        description="The operator's account that shadow runs are charged to: a tenant of this "
        "name, made inactive (no key can use it) on the first shadow run.",
    )
    shadow_budget_cap: Decimal = Field(
        Decimal("100"),
        ge=0,
        description="Monthly cap of the operator's shadow account when it is made; a shadow "
        "run that would not fit is skipped. Change it later like any tenant's cap.",
    )

    @model_validator(mode="after")
    def check_horizon(self) -> AccountingSettings:
        if self.stuck_after_s <= self.task_expires_s:
            raise ValueError("need stuck_after_s > task_expires_s")
        if any(not 0.0 <= f <= 1.0 for f in self.shadow_domain_fractions.values()):
            raise ValueError("shadow_domain_fractions must be shares between 0 and 1")
        return self

    def shadow_share(self, domain: str) -> float:
        """The share of ``domain``'s tandem jobs that get a shadow run."""
        return self.shadow_domain_fractions.get(Domain(domain), self.shadow_fraction)


@lru_cache
def get_accounting_settings() -> AccountingSettings:
    return AccountingSettings()
