"""Request and response bodies of the job routes (they are the OpenAPI schema)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    UrlConstraints,
)

from services.api.validation import StorableJson, StorableText
from shared.db.models import Domain, JobStatus, Policy
from shared.egress import public_url
from shared.money import Amount, PlainDecimal

# Refused at submission unless public (checked again when delivering: DNS can change).
WebhookUrl = Annotated[AnyHttpUrl, UrlConstraints(max_length=2048), AfterValidator(public_url)]


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: StorableText = Field(
        ..., min_length=1, description="The question; too long answers 413."
    )
    domain: Domain = Field(..., description="Which prompt templates and classifier to use.")
    policy: Policy = Field(Policy.TANDEM, description="tandem, or a baseline.")
    level: StrictInt | None = Field(None, description="The level of policy fixed_level.")
    levels: list[StrictInt] | None = Field(
        None,
        max_length=16,
        description="This job's cumulative insight-token budgets, starting at 0 "
        "(default: the domain's schedule).",
    )
    max_levels: StrictInt | None = Field(None, description="Stop at this level at the latest.")
    max_answer_tokens: StrictInt | None = Field(None, description="Answer budget of the executor.")
    max_cost: Amount | None = Field(
        None, gt=0, description="Most this job may cost (USD); the plan shrinks to fit."
    )
    allow_shrink: StrictBool = Field(
        True, description="Allow fewer levels / a shorter answer to fit the budget, else 402."
    )
    metadata: StorableJson = Field(default_factory=dict, description="Stored and echoed back.")
    webhook_url: WebhookUrl | None = Field(None, description="POSTed the result, signed.")
    stream_answer: StrictBool = Field(
        False,
        description="Publish the executor's text as it is generated: the job's event stream "
        "then carries answer_delta events before its answer event.",
    )


class JobAccepted(BaseModel):
    id: uuid.UUID
    status: JobStatus
    url: str
    reserved: PlainDecimal = Field(description="Worst-case cost held against the budget.")
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
    flops: PlainDecimal
    cost: PlainDecimal


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
    reserved: PlainDecimal
    cost: PlainDecimal
    max_cost: PlainDecimal | None
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
    api_key_id: uuid.UUID | None = Field(
        None, description="The API key that submitted the job (null: none, e.g. an operator's)."
    )


class JobSummary(BaseModel):
    id: uuid.UUID
    status: JobStatus
    domain: Domain
    policy: Policy
    cost: PlainDecimal
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
    flops: PlainDecimal
    cost: PlainDecimal
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
    reserved: PlainDecimal
    cost: PlainDecimal
    calls: list[AuditCall]
    events: list[AuditEvent]


class CancelOut(BaseModel):
    id: uuid.UUID
    status: JobStatus
    cancel_requested: bool
