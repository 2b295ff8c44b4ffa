"""The schema (docs/architecture.md, 'Data model'). Every table here has a migration; a test
checks they agree."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.base import ZERO, Base, Money, Timestamps, UUIDPrimaryKey

# FLOPs are whole numbers far beyond Money's range (2 · 7e9 params · 1e3 tokens = 1.4e13 for one
# call; a day's roll-up is orders of magnitude more).
Flops = Numeric(38, 0)


class JobStatus(StrEnum):
    QUEUED = "queued"
    COORDINATING = "coordinating"
    SCORING = "scoring"
    EXECUTING = "executing"
    SETTLING = "settling"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.REJECTED}
)


class Policy(StrEnum):
    TANDEM = "tandem"
    LLM_ONLY = "llm_only"
    SLM_ONLY = "slm_only"
    FIXED_LEVEL = "fixed_level"


class Domain(StrEnum):
    MATH = "math"
    CODE = "code"
    GENERAL = "general"


class Role(StrEnum):
    COORDINATOR = "coordinator"
    SCORER = "scorer"
    EXECUTOR = "executor"


class TerminationReason(StrEnum):
    SUFFICIENT = "sufficient"
    INSIGHTS_FINISHED = "insights_finished"
    MAX_LEVEL = "max_level"
    BUDGET = "budget"
    POLICY = "policy"  # baselines: the policy itself fixes the level


class BudgetPeriod(StrEnum):
    MONTHLY = "monthly"
    DAILY = "daily"
    TOTAL = "total"


class LedgerKind(StrEnum):
    RESERVE = "reserve"
    SETTLE = "settle"
    RELEASE = "release"


class Tenant(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "tenants"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    budget_period: Mapped[str] = mapped_column(
        String(16), default=BudgetPeriod.MONTHLY.value, server_default=BudgetPeriod.MONTHLY.value
    )
    # The cap applies to every period of the tenant's kind; a budget row per period is made
    # on first use (the period is a key, not a reset job).
    budget_cap: Mapped[Decimal] = mapped_column(Money, default=ZERO, server_default="0")
    soft_alert_ratio: Mapped[Decimal] = mapped_column(
        Money, default=Decimal("0.8"), server_default="0.8"
    )
    # 1: the alert of an exhausted budget. Each threshold fires once per period (BudgetAlert).
    hard_alert_ratio: Mapped[Decimal] = mapped_column(
        Money, default=Decimal(1), server_default=text("1")
    )
    # Where the tenant's budget alerts are POSTed, signed (None: alerts are only listed).
    alert_url: Mapped[str | None] = mapped_column(String(2048))
    max_cost_per_request: Mapped[Decimal | None] = mapped_column(Money)
    rate_limit_rpm: Mapped[int | None] = mapped_column(Integer)
    max_concurrent_jobs: Mapped[int | None] = mapped_column(Integer)
    webhook_secret: Mapped[str] = mapped_column(String(128))

    __table_args__ = (
        CheckConstraint("budget_cap >= 0", name="cap_nonnegative"),
        CheckConstraint("budget_period IN ('monthly', 'daily', 'total')", name="period_kind"),
    )


class ApiKey(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "api_keys"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The key's own limits, within its tenant's: a budget cap per period (None: only the
    # tenant's cap applies; the period is the tenant's unless set), an expiry, and a rate.
    budget_cap: Mapped[Decimal | None] = mapped_column(Money)
    budget_period: Mapped[str | None] = mapped_column(String(16))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rate_limit_rpm: Mapped[int | None] = mapped_column(Integer)
    # The alert thresholds of the key's budget (None: its tenant's).
    soft_alert_ratio: Mapped[Decimal | None] = mapped_column(Money)
    hard_alert_ratio: Mapped[Decimal | None] = mapped_column(Money)

    __table_args__ = (
        CheckConstraint("budget_cap >= 0", name="key_cap_nonnegative"),
        CheckConstraint("budget_period IN ('monthly', 'daily', 'total')", name="key_period_kind"),
    )


class KeyBudget(UUIDPrimaryKey, Timestamps, Base):
    """A key's spend in one period (made with the key, then by its first admission of each
    later period): reserved and settled beside its tenant's budget row (the same amounts, in
    the same statements), so a key's cap holds as exactly as the tenant's and every key's
    spend is exact."""

    __tablename__ = "key_budgets"

    api_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    period_key: Mapped[str] = mapped_column(String(16))
    cap: Mapped[Decimal | None] = mapped_column(Money)  # None: the tenant's cap only
    spent: Mapped[Decimal] = mapped_column(Money, default=ZERO, server_default="0")
    reserved: Mapped[Decimal] = mapped_column(Money, default=ZERO, server_default="0")

    __table_args__ = (
        UniqueConstraint("api_key_id", "period_key"),
        CheckConstraint("spent >= 0", name="key_spent_nonnegative"),
        CheckConstraint("reserved >= 0", name="key_reserved_nonnegative"),
    )


class Budget(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "budgets"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    period_key: Mapped[str] = mapped_column(String(16))  # "2026-11", "2026-11-28" or "total"
    cap: Mapped[Decimal] = mapped_column(Money)
    spent: Mapped[Decimal] = mapped_column(Money, default=ZERO, server_default="0")
    reserved: Mapped[Decimal] = mapped_column(Money, default=ZERO, server_default="0")

    __table_args__ = (
        UniqueConstraint("tenant_id", "period_key"),
        CheckConstraint("spent >= 0", name="spent_nonnegative"),
        CheckConstraint("reserved >= 0", name="reserved_nonnegative"),
    )


# What the reports read of a job besides its tenant and creation time (covering indexes).
JOB_REPORT_COLUMNS = (
    "status",
    "domain",
    "policy",
    "cost",
    "finished_at",
    "truncation_level",
    "termination_reason",
    "shadow_of",  # shadow runs are the operator's measurement, never a tenant's job
)
# What the savings report reads of a shadow run and the job it measures (services.api.reports).
SHADOW_REPORT_COLUMNS = ("domain", "status", "cost", "shadow_of_tenant_id", "shadow_of_cost")


class Job(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "jobs"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED.value)
    domain: Mapped[str] = mapped_column(String(16))
    policy: Mapped[str] = mapped_column(String(16), default=Policy.TANDEM.value)
    question: Mapped[str] = mapped_column(Text)
    job_metadata: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    webhook_url: Mapped[str | None] = mapped_column(String(2048))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    # SHA-256 of the whole normalised request: a replay under the same key must match it.
    request_hash: Mapped[str | None] = mapped_column(String(64))
    # The plan admitted at submission: cumulative insight-token budgets per level, the fixed
    # level of a fixed_level policy, and the executor's answer budget.
    levels: Mapped[list[int]] = mapped_column(JSONB)
    fixed_level: Mapped[int | None] = mapped_column(Integer)
    max_answer_tokens: Mapped[int] = mapped_column(Integer)
    prompt_version: Mapped[str] = mapped_column(String(64))
    budget_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("budgets.id"))
    # The key that submitted the job (None: made by hand or before keys were recorded), and
    # its key's budget row for the period (the hold sits in both rows).
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL")
    )
    key_budget_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("key_budgets.id"))
    max_cost: Mapped[Decimal | None] = mapped_column(Money)
    reserved_amount: Mapped[Decimal] = mapped_column(Money, default=ZERO, server_default="0")
    # The prices the job was admitted under, per role (shared.prices.snapshot): its calls are
    # charged at these whatever the price table says later. NULL: admitted before the table.
    prices: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    cost: Mapped[Decimal] = mapped_column(Money, default=ZERO, server_default="0")
    # Progress and outcome.
    current_level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    insights: Mapped[str] = mapped_column(Text, default="", server_default="")
    insight_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    insights_finished: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    scores: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, default=list, server_default=text("'[]'::jsonb")
    )
    classifier_version: Mapped[str | None] = mapped_column(String(64))
    thresholds: Mapped[list[float] | None] = mapped_column(JSONB)
    truncation_level: Mapped[int | None] = mapped_column(Integer)
    truncation_tokens: Mapped[int | None] = mapped_column(Integer)
    termination_reason: Mapped[str | None] = mapped_column(String(32))
    reasoning: Mapped[str | None] = mapped_column(Text)
    answer: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    # Someone follows the answer as it is generated (a streamed chat completion): the executor
    # streams its engine call and publishes the text (shared.jobs.answer_stream).
    stream_answer: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    trace_id: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set in the statement that adds the job to the roll-ups (shared.rollups): reports read the
    # roll-ups for these and the raw row for the rest.
    rolled_up: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # A shadow run: the same question answered by the coordinator alone (llm_only), charged to
    # the operator's account, so the savings report measures its counterfactual on the tenant's
    # own traffic (services.accounting.shadow). NULL for every job a tenant submitted. The
    # measured job's tenant and settled cost (both final when the run is made) are copied, so
    # the report reads the pairs from one index, not one lookup per pair.
    shadow_of: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    shadow_of_tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="SET NULL")
    )
    shadow_of_cost: Mapped[Decimal | None] = mapped_column(Money)

    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        # Cursor pagination, and the reports' range scans: the columns they aggregate are
        # carried in the index so a tenant's month is an index-only scan.
        Index(
            "ix_jobs_tenant_created",
            "tenant_id",
            "created_at",
            "id",
            postgresql_include=list(JOB_REPORT_COLUMNS),
        ),
        # The admin's all-tenant reports.
        Index("ix_jobs_created", "created_at", postgresql_include=list(JOB_REPORT_COLUMNS)),
        Index("ix_jobs_status_updated", "status", "updated_at"),
        # The jobs the roll-ups do not hold yet (live, or ended without a settlement): few.
        Index(
            "ix_jobs_unrolled",
            "created_at",
            postgresql_include=["tenant_id", *JOB_REPORT_COLUMNS],
            postgresql_where=text("NOT rolled_up"),
        ),
        Index(
            "ix_jobs_unrolled_tenant",
            "tenant_id",
            "created_at",
            postgresql_include=list(JOB_REPORT_COLUMNS),
            postgresql_where=text("NOT rolled_up"),
        ),
        # At most one shadow run per job; the savings report reads the shadow runs of a range
        # (a share of the traffic), all of them or one tenant's, from these alone.
        Index(
            "ix_jobs_shadow_of",
            "shadow_of",
            unique=True,
            postgresql_where=text("shadow_of IS NOT NULL"),
        ),
        Index(
            "ix_jobs_shadows",
            "created_at",
            postgresql_include=list(SHADOW_REPORT_COLUMNS),
            postgresql_where=text("shadow_of IS NOT NULL"),
        ),
        Index(
            "ix_jobs_shadows_tenant",
            "shadow_of_tenant_id",
            "created_at",
            postgresql_include=list(SHADOW_REPORT_COLUMNS),
            postgresql_where=text("shadow_of IS NOT NULL"),
        ),
    )


class JobEvent(Base):
    """Append-only history of a job: every status transition and progress step is a row."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str | None] = mapped_column(String(16))
    level: Mapped[int | None] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AlertThreshold(StrEnum):
    SOFT = "soft"  # the tenant's soft_alert_ratio of the cap
    HARD = "hard"  # its hard_alert_ratio (1: the budget is exhausted)


class AlertRecipient(StrEnum):
    TENANT = "tenant"  # the tenant's alert_url, signed with its webhook secret
    OPERATOR = "operator"  # TANDEM_OPERATOR_ALERT_URL, signed with the operator's secret


class BudgetAlert(UUIDPrimaryKey, Base):
    """A budget threshold crossed: written by the settlement that crossed it, at most once per
    budget row (a tenant's or a capped key's, per period) and threshold, which the unique keys
    enforce."""

    __tablename__ = "budget_alerts"
    __table_args__ = (
        UniqueConstraint("budget_id", "threshold"),
        UniqueConstraint("key_budget_id", "threshold"),
        CheckConstraint("num_nonnulls(budget_id, key_budget_id) = 1", name="one_budget"),
        CheckConstraint("threshold IN ('soft', 'hard')", name="threshold_known"),
        Index("ix_budget_alerts_tenant_created", "tenant_id", "created_at"),
        Index("ix_budget_alerts_created", "created_at"),
    )

    # The subject: the tenant's budget row, or the key's (api_key_id says which key).
    budget_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("budgets.id", ondelete="CASCADE")
    )
    key_budget_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("key_budgets.id", ondelete="CASCADE")
    )
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE")
    )
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    period_key: Mapped[str] = mapped_column(String(16))
    threshold: Mapped[str] = mapped_column(String(8))
    ratio: Mapped[Decimal] = mapped_column(Money)
    cap: Mapped[Decimal] = mapped_column(Money)
    spent: Mapped[Decimal] = mapped_column(Money)  # right after the crossing settlement
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WebhookDelivery(UUIDPrimaryKey, Base):
    """The webhook outbox, written in the settlement transaction and delivered at least once by
    the webhooks service: one row per finished job with a ``webhook_url``, and one per budget
    alert and recipient."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'delivered', 'failed')", name="state_known"),
        CheckConstraint("num_nonnulls(job_id, alert_id) = 1", name="one_subject"),
        CheckConstraint("recipient IN ('tenant', 'operator')", name="recipient_known"),
        UniqueConstraint("alert_id", "recipient"),
        # The relay's scan: pending rows whose next attempt is overdue.
        Index(
            "ix_webhook_deliveries_pending",
            "next_attempt_at",
            postgresql_where=text("state = 'pending'"),
        ),
    )

    job_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), unique=True
    )
    alert_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("budget_alerts.id", ondelete="CASCADE")
    )
    recipient: Mapped[str] = mapped_column(
        String(16), default=AlertRecipient.TENANT.value, server_default=text("'tenant'")
    )
    url: Mapped[str] = mapped_column(String(2048))
    body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    state: Mapped[str] = mapped_column(
        String(16), default="pending", server_default=text("'pending'")
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ModelCall(UUIDPrimaryKey, Base):
    """One engine call, with the token counts the engine itself reported.

    Unique per (job, step): a redelivered task finds its step recorded and does not call or
    charge twice.
    """

    __tablename__ = "model_calls"

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(200))
    engine: Mapped[str] = mapped_column(String(32))
    level: Mapped[int | None] = mapped_column(Integer)
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    generated_tokens: Mapped[int] = mapped_column(Integer)
    # Of the prompt tokens, those the engine served from its prefix cache (the cached price).
    cached_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    latency_ms: Mapped[float] = mapped_column(default=0.0)
    flops_prompt: Mapped[Decimal] = mapped_column(Flops, default=ZERO)
    flops_generated: Mapped[Decimal] = mapped_column(Flops, default=ZERO)
    cost: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    output_text: Mapped[str | None] = mapped_column(Text)
    finish_reason: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("job_id", "step"),
        CheckConstraint("prompt_tokens >= 0 AND generated_tokens >= 0", name="tokens_nonnegative"),
    )


class LedgerEntry(UUIDPrimaryKey, Base):
    __tablename__ = "ledger_entries"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    budget_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("budgets.id"), index=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Money)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("job_id", "kind"),
        CheckConstraint("amount >= 0", name="amount_nonnegative"),
        CheckConstraint("kind IN ('reserve', 'settle', 'release')", name="kind_known"),
    )


# The roll-ups (written by shared.rollups when a job is settled): what the reports read instead
# of raw rows. Every family has an hourly level (views by hour, and the partial days at the
# edges of a range) and a daily level (month and operator views). Each job adds to its
# tenant's row and to the all-tenants row (tenant_id NULL), so an operator's view reads one row
# per period and key instead of one per tenant. The unique keys treat NULL as a value (NULLS NOT
# DISTINCT) and carry the sums, so a range is an index-only scan.

# The sums a usage row carries.
USAGE_METRICS = ("calls", "prompt_tokens", "generated_tokens", "flops", "cost")


def _rollup_tenant() -> Mapped[uuid.UUID | None]:
    return mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))


def _rollup_key(table: str, period: str, *keys: str, include: tuple[str, ...]) -> UniqueConstraint:
    return UniqueConstraint(
        "tenant_id",
        period,
        *keys,
        name=f"uq_{table}_key",
        postgresql_nulls_not_distinct=True,
        postgresql_include=list(include),
    )


USAGE_KEYS = ("model", "role", "domain", "policy")


class UsageMetrics:
    """The calls of settled jobs, in the hour (or day) each call was made, per tenant (or all)."""

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tenant_id: Mapped[uuid.UUID | None] = _rollup_tenant()
    calls: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    generated_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    flops: Mapped[Decimal] = mapped_column(Flops, default=ZERO, server_default="0")
    cost: Mapped[Decimal] = mapped_column(Money, default=ZERO, server_default="0")


class UsageRollup(UsageMetrics):
    """Usage per model, role, domain and policy."""

    model: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    domain: Mapped[str] = mapped_column(String(16))
    policy: Mapped[str] = mapped_column(String(16))


class UsageHourly(UsageRollup, Base):
    __tablename__ = "usage_hourly"

    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # start of the UTC hour

    __table_args__ = (
        _rollup_key("usage_hourly", "hour", *USAGE_KEYS, include=USAGE_METRICS),
        # The admin's views grouped by tenant read the tenants' rows of a range.
        Index(
            "ix_usage_hourly_hour",
            "hour",
            postgresql_include=["tenant_id", *USAGE_KEYS, *USAGE_METRICS],
            postgresql_where=text("tenant_id IS NOT NULL"),
        ),
    )


class UsageDaily(UsageRollup, Base):
    __tablename__ = "usage_daily"

    day: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # start of the UTC day

    __table_args__ = (
        _rollup_key("usage_daily", "day", *USAGE_KEYS, include=USAGE_METRICS),
        Index(
            "ix_usage_daily_day",
            "day",
            postgresql_include=["tenant_id", *USAGE_KEYS, *USAGE_METRICS],
            postgresql_where=text("tenant_id IS NOT NULL"),
        ),
    )


class UsageTotalHourly(UsageMetrics, Base):
    """A tenant's usage (or everyone's) per hour, whatever the model, role, domain or policy:
    the views grouped by day and tenant only (the default view, the operator's spend per
    tenant, the budget's days) read one row per tenant and period instead of dozens."""

    __tablename__ = "usage_total_hourly"

    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        _rollup_key("usage_total_hourly", "hour", include=USAGE_METRICS),
        Index(
            "ix_usage_total_hourly_hour",
            "hour",
            postgresql_include=["tenant_id", *USAGE_METRICS],
            postgresql_where=text("tenant_id IS NOT NULL"),
        ),
    )


class UsageTotalDaily(UsageMetrics, Base):
    __tablename__ = "usage_total_daily"

    day: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        _rollup_key("usage_total_daily", "day", include=USAGE_METRICS),
        Index(
            "ix_usage_total_daily_day",
            "day",
            postgresql_include=["tenant_id", *USAGE_METRICS],
            postgresql_where=text("tenant_id IS NOT NULL"),
        ),
    )


class KeyUsageMetrics(UsageMetrics):
    """A tenant's usage per API key (None: jobs no key submitted): the views grouped by key.
    Tenant rows only: a key belongs to one tenant, so an all-tenants row would repeat them."""

    api_key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE")
    )


class KeyUsageHourly(KeyUsageMetrics, Base):
    __tablename__ = "key_usage_hourly"

    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        _rollup_key("key_usage_hourly", "hour", "api_key_id", include=USAGE_METRICS),
        # A key's spend over a range, whatever its tenant (the key's own report).
        Index("ix_key_usage_hourly_key", "api_key_id", "hour", postgresql_include=["cost"]),
    )


class KeyUsageDaily(KeyUsageMetrics, Base):
    __tablename__ = "key_usage_daily"

    day: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        _rollup_key("key_usage_daily", "day", "api_key_id", include=USAGE_METRICS),
        Index("ix_key_usage_daily_key", "api_key_id", "day", postgresql_include=["cost"]),
    )


OUTCOME_KEYS = ("domain", "policy", "status", "truncation_level", "termination_reason")
OUTCOME_METRICS = ("jobs", "cost")


class OutcomeRollup:
    """How settled jobs ended, per tenant (or all), UTC hour (or day) of their creation, domain,
    policy, status, truncation level and termination reason: the job counts, savings and
    truncation reports."""

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tenant_id: Mapped[uuid.UUID | None] = _rollup_tenant()
    domain: Mapped[str] = mapped_column(String(16))
    policy: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    truncation_level: Mapped[int | None] = mapped_column(Integer)
    termination_reason: Mapped[str | None] = mapped_column(String(32))
    jobs: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    cost: Mapped[Decimal] = mapped_column(Money, default=ZERO, server_default="0")


class OutcomeHourly(OutcomeRollup, Base):
    __tablename__ = "outcome_hourly"

    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        _rollup_key("outcome_hourly", "hour", *OUTCOME_KEYS, include=OUTCOME_METRICS),
    )


class OutcomeDaily(OutcomeRollup, Base):
    __tablename__ = "outcome_daily"

    day: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (_rollup_key("outcome_daily", "day", *OUTCOME_KEYS, include=OUTCOME_METRICS),)


class LatencyRollup:
    """A histogram of succeeded jobs' latency (submission to finish) per tenant (or all) and
    UTC hour (or day) of creation: the report's percentiles, without sorting jobs. Buckets are
    logarithmic (shared.rollups.buckets)."""

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tenant_id: Mapped[uuid.UUID | None] = _rollup_tenant()
    bucket: Mapped[int] = mapped_column(SmallInteger)
    jobs: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class LatencyHourly(LatencyRollup, Base):
    __tablename__ = "latency_hourly"

    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (_rollup_key("latency_hourly", "hour", "bucket", include=("jobs",)),)


class LatencyDaily(LatencyRollup, Base):
    __tablename__ = "latency_daily"

    day: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (_rollup_key("latency_daily", "day", "bucket", include=("jobs",)),)


class ScoreRollup:
    """How many classifier checkpoint scores fell in each tenth of [0, 1], per tenant (or all),
    UTC hour (or day) of the job's creation, domain and policy, so the truncation report's
    histograms never read the jobs' JSON scores."""

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tenant_id: Mapped[uuid.UUID | None] = _rollup_tenant()
    domain: Mapped[str] = mapped_column(String(16))
    policy: Mapped[str] = mapped_column(String(16))
    bucket: Mapped[int] = mapped_column(SmallInteger)  # k: scores in [k/10, (k+1)/10); 9 has 1.0
    checkpoints: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class ScoreHourly(ScoreRollup, Base):
    __tablename__ = "score_hourly"

    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        _rollup_key("score_hourly", "hour", "domain", "policy", "bucket", include=("checkpoints",)),
        CheckConstraint("bucket BETWEEN 0 AND 9", name="bucket_range"),
    )


class ScoreDaily(ScoreRollup, Base):
    __tablename__ = "score_daily"

    day: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        _rollup_key("score_daily", "day", "domain", "policy", "bucket", include=("checkpoints",)),
        CheckConstraint("bucket BETWEEN 0 AND 9", name="bucket_range"),
    )


class ClassifierModel(UUIDPrimaryKey, Base):
    __tablename__ = "classifier_models"

    version: Mapped[str] = mapped_column(String(64), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(1024))
    feature_names: Mapped[list[str]] = mapped_column(JSONB)
    thresholds: Mapped[list[float]] = mapped_column(JSONB)
    # The insight-token schedule the thresholds are fitted on, matched by budget (NULL: a
    # version registered before schedules were recorded; matched by position).
    levels: Mapped[list[int] | None] = mapped_column(JSONB)
    # The rule the scorer serves with it (shared.classifier.rules).
    stop_rule: Mapped[dict[str, Any]] = mapped_column(
        JSONB,
        default=lambda: {"kind": "threshold"},
        server_default=text("""'{"kind": "threshold"}'::jsonb"""),
    )
    metrics: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    active: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # At most one active version.
        Index(
            "uq_classifier_models_one_active",
            "active",
            unique=True,
            postgresql_where=text("active"),
        ),
    )


class ModelPrice(UUIDPrimaryKey, Base):
    """A model's prices per million tokens from ``effective_from`` on: rows are only added, never
    changed, so the price in force at any time stays known (the latest row not after it)."""

    __tablename__ = "model_prices"

    model: Mapped[str] = mapped_column(String(200))
    prompt_per_mtok: Mapped[Decimal] = mapped_column(Money)
    generated_per_mtok: Mapped[Decimal] = mapped_column(Money)
    cached_prompt_per_mtok: Mapped[Decimal] = mapped_column(Money)
    effective_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(16))  # "environment" (the seed) or "admin"
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        # Also the index of "the latest row not after t" per model.
        UniqueConstraint("model", "effective_from"),
        CheckConstraint(
            "prompt_per_mtok >= 0 AND generated_per_mtok >= 0 AND cached_prompt_per_mtok >= 0",
            name="prices_nonnegative",
        ),
        # Admission reserves a prompt at the full prompt price: a cached token may not cost more.
        CheckConstraint(
            "cached_prompt_per_mtok <= prompt_per_mtok", name="cached_not_above_prompt"
        ),
    )
