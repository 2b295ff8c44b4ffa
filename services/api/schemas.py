"""Request and response bodies of the job API (they are the OpenAPI schema)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, UrlConstraints

from shared.db.models import BudgetPeriod, Domain, JobStatus, Policy

WebhookUrl = Annotated[AnyHttpUrl, UrlConstraints(max_length=2048)]


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(..., min_length=1, description="The question; too long answers 413.")
    domain: Domain = Field(..., description="Which prompt templates and classifier to use.")
    policy: Policy = Field(Policy.TANDEM, description="tandem, or a baseline.")
    level: int | None = Field(None, description="The level of policy fixed_level.")
    levels: list[int] | None = Field(
        None,
        max_length=16,
        description="This job's cumulative insight-token budgets, starting at 0 "
        "(default: the domain's schedule).",
    )
    max_levels: int | None = Field(None, description="Stop at this level at the latest.")
    max_answer_tokens: int | None = Field(None, description="Answer budget of the executor.")
    max_cost: Decimal | None = Field(
        None, gt=0, description="Most this job may cost (USD); the plan shrinks to fit."
    )
    allow_shrink: bool = Field(
        True, description="Allow fewer levels / a shorter answer to fit the budget, else 402."
    )
    metadata: dict[str, Any] = Field(default_factory=dict, description="Stored and echoed back.")
    webhook_url: WebhookUrl | None = Field(None, description="POSTed the result, signed.")


class JobAccepted(BaseModel):
    id: uuid.UUID
    status: JobStatus
    url: str
    reserved: Decimal = Field(description="Worst-case cost held against the budget.")
    levels: list[int]
    max_answer_tokens: int
    shrunk: bool = Field(description="Whether the plan was shrunk to fit the budget.")


class Truncation(BaseModel):
    level: int | None
    tokens: int | None
    reason: str | None
    scores: list[dict[str, Any]]
    thresholds: list[float] | None
    classifier_version: str | None


class ModelUsage(BaseModel):
    model: str
    role: str
    calls: int
    prompt_tokens: int
    generated_tokens: int
    flops: Decimal
    cost: Decimal


class Timings(BaseModel):
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    queued_s: float | None
    run_s: float | None


class JobOut(BaseModel):
    id: uuid.UUID
    status: JobStatus
    domain: Domain
    policy: Policy
    question: str
    answer: str | None
    reasoning: str | None
    insights: str
    current_level: int
    truncation: Truncation
    usage: list[ModelUsage]
    reserved: Decimal
    cost: Decimal
    max_cost: Decimal | None
    levels: list[int]
    max_answer_tokens: int
    prompt_version: str
    cancel_requested: bool
    error: dict[str, str | None] | None
    metadata: dict[str, Any]
    timings: Timings
    trace_id: str | None = Field(
        None,
        description="OpenTelemetry trace id of the job, across every service's spans and logs.",
    )


class JobSummary(BaseModel):
    id: uuid.UUID
    status: JobStatus
    domain: Domain
    policy: Policy
    cost: Decimal
    created_at: datetime
    finished_at: datetime | None
    url: str


class JobPage(BaseModel):
    data: list[JobSummary]
    next_cursor: str | None


class AuditCall(BaseModel):
    step: str
    role: str
    model: str
    engine: str
    level: int | None
    prompt_tokens: int
    generated_tokens: int
    latency_ms: float
    flops: Decimal
    cost: Decimal
    finish_reason: str | None


class AuditEvent(BaseModel):
    at: datetime
    kind: str
    status: str | None
    level: int | None
    data: dict[str, Any]


class JobAudit(BaseModel):
    """Where the job stopped and why, every model call it paid for, every event it went through."""

    job_id: uuid.UUID
    tenant_id: uuid.UUID
    status: JobStatus
    policy: Policy
    domain: Domain
    levels: list[int]
    fixed_level: int | None
    prompt_version: str
    question: str
    truncation_level: int | None
    truncation_tokens: int | None
    insight_tokens_written: int
    insights_finished: bool
    termination_reason: str | None
    classifier_version: str | None
    thresholds: list[float] | None
    scores: list[dict[str, Any]]
    answer: str | None
    error: dict[str, str | None] | None
    reserved: Decimal
    cost: Decimal
    calls: list[AuditCall]
    events: list[AuditEvent]


class CancelOut(BaseModel):
    id: uuid.UUID
    status: JobStatus
    cancel_requested: bool


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


# --- admin -------------------------------------------------------------------------------


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=200)
    budget_cap: Decimal = Field(Decimal(0), ge=0, le=Decimal("1e9"))
    budget_period: BudgetPeriod = BudgetPeriod.MONTHLY
    soft_alert_ratio: Decimal = Field(Decimal("0.8"), gt=0, le=1)
    max_cost_per_request: Decimal | None = Field(None, gt=0, le=Decimal("1e9"))
    rate_limit_rpm: int | None = Field(None, gt=0, le=1_000_000)
    max_concurrent_jobs: int | None = Field(None, gt=0, le=1_000_000)


class TenantUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    budget_cap: Decimal | None = Field(None, ge=0, le=Decimal("1e9"))
    budget_period: BudgetPeriod | None = None
    soft_alert_ratio: Decimal | None = Field(None, gt=0, le=1)
    max_cost_per_request: Decimal | None = Field(None, gt=0, le=Decimal("1e9"))
    rate_limit_rpm: int | None = Field(None, gt=0, le=1_000_000)
    max_concurrent_jobs: int | None = Field(None, gt=0, le=1_000_000)
    active: bool | None = None


class BudgetOut(BaseModel):
    period: str
    cap: Decimal
    spent: Decimal
    reserved: Decimal


class TenantOut(BaseModel):
    id: uuid.UUID
    name: str
    active: bool
    budget_cap: Decimal
    budget_period: BudgetPeriod
    soft_alert_ratio: Decimal
    max_cost_per_request: Decimal | None
    rate_limit_rpm: int | None
    max_concurrent_jobs: int | None
    created_at: datetime
    budget: BudgetOut | None = None


class TenantCreated(TenantOut):
    webhook_secret: str = Field(description="Signs this tenant's webhooks; shown once.")


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=200)


class KeyOut(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class KeyCreated(KeyOut):
    key: str = Field(description="The full key: shown once, never retrievable again.")


# --- OpenAI-compatible front door ---------------------------------------------------------


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionRequest(BaseModel):
    """The subset of OpenAI's request Tandem honours; unknown OpenAI fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(..., min_length=1, description="'tandem' or 'tandem-<policy>'.")
    messages: list[ChatMessage] = Field(..., min_length=1)
    max_tokens: int | None = Field(None, gt=0)
    max_completion_tokens: int | None = Field(None, gt=0)
    stream: bool | None = False
    domain: Domain = Field(Domain.GENERAL, description="Tandem extension (extra_body).")
    max_cost: Decimal | None = Field(None, gt=0, description="Tandem extension (extra_body).")


class ChatChoiceMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int
    message: ChatChoiceMessage
    finish_reason: Literal["stop", "length"]


class ChatUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: ChatUsage
    tandem: dict[str, Any] = Field(description="The Tandem job behind the answer.")
