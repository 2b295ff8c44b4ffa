"""The schema (DESIGN.md §3). Every table here has a migration; a test checks they agree."""

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


class Budget(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "budgets"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    period_key: Mapped[str] = mapped_column(String(16))  # "2026-11", "2026-11-28" or "total"
    cap: Mapped[Decimal] = mapped_column(Money)
    spent: Mapped[Decimal] = mapped_column(Money, default=ZERO, server_default="0")
    reserved: Mapped[Decimal] = mapped_column(Money, default=ZERO, server_default="0")
    alert_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

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
)


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
    # The plan admitted at submission: cumulative insight-token budgets per level, the fixed
    # level of a fixed_level policy, and the executor's answer budget.
    levels: Mapped[list[int]] = mapped_column(JSONB)
    fixed_level: Mapped[int | None] = mapped_column(Integer)
    max_answer_tokens: Mapped[int] = mapped_column(Integer)
    prompt_version: Mapped[str] = mapped_column(String(64))
    budget_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("budgets.id"))
    max_cost: Mapped[Decimal | None] = mapped_column(Money)
    reserved_amount: Mapped[Decimal] = mapped_column(Money, default=ZERO, server_default="0")
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
    trace_id: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

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


# The sums a usage row carries; the roll-up's indexes include them so reports read only the
# index (a tenant's month of hourly rows is an index-only scan).
USAGE_METRICS = ("calls", "prompt_tokens", "generated_tokens", "flops", "cost")


class UsageHourly(Base):
    """Per tenant, UTC hour, model, role, domain and policy: what reports read instead of raw
    rows. Hourly, so reports can group by hour; days are summed from hours."""

    __tablename__ = "usage_hourly"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # start of the UTC hour
    model: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    domain: Mapped[str] = mapped_column(String(16))
    policy: Mapped[str] = mapped_column(String(16))
    calls: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    generated_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    flops: Mapped[Decimal] = mapped_column(Flops, default=ZERO, server_default="0")
    cost: Mapped[Decimal] = mapped_column(Money, default=ZERO, server_default="0")

    __table_args__ = (
        # Leads with (tenant_id, hour): also the index of a tenant's range scans.
        UniqueConstraint(
            "tenant_id",
            "hour",
            "model",
            "role",
            "domain",
            "policy",
            postgresql_include=list(USAGE_METRICS),
        ),
        # The admin's all-tenant range scans.
        Index(
            "ix_usage_hourly_hour",
            "hour",
            postgresql_include=["tenant_id", "model", "role", "domain", "policy", *USAGE_METRICS],
        ),
    )


class ScoreHourly(Base):
    """How many classifier checkpoint scores fell in each tenth of [0, 1], per tenant, UTC hour
    of the job's creation, domain and policy. Added once per job when it is settled, so the
    truncation report's histograms never read the jobs' JSON scores."""

    __tablename__ = "score_hourly"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    domain: Mapped[str] = mapped_column(String(16))
    policy: Mapped[str] = mapped_column(String(16))
    bucket: Mapped[int] = mapped_column(SmallInteger)  # k: scores in [k/10, (k+1)/10); 9 has 1.0
    checkpoints: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    __table_args__ = (
        UniqueConstraint(
            "tenant_id", "hour", "domain", "policy", "bucket", postgresql_include=["checkpoints"]
        ),
        Index(
            "ix_score_hourly_hour",
            "hour",
            postgresql_include=["tenant_id", "domain", "policy", "bucket", "checkpoints"],
        ),
        CheckConstraint("bucket BETWEEN 0 AND 9", name="bucket_range"),
    )


class ClassifierModel(UUIDPrimaryKey, Base):
    __tablename__ = "classifier_models"

    version: Mapped[str] = mapped_column(String(64), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(1024))
    feature_names: Mapped[list[str]] = mapped_column(JSONB)
    thresholds: Mapped[list[float]] = mapped_column(JSONB)
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
