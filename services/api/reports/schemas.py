"""Response bodies of the reports (the OpenAPI schema). Money is a decimal string, FLOPs an
integer string, times ISO 8601 UTC."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from services.api.reports.params import GroupKey
from shared.db.models import BudgetPeriod, Policy

UsageValue = str | int | None
# Where the coordinator-alone cost comes from, best first: shadow runs paired with the jobs,
# llm_only jobs the tenants submitted, the offline evaluation table, nothing.
EstimateMethod = Literal["shadow", "llm_only_jobs", "offline_table", "none"]


class UsageTotals(BaseModel):
    calls: int
    prompt_tokens: int
    generated_tokens: int
    flops: str
    cost: str


class Latency(BaseModel):
    p50: float | None
    p95: float | None
    p99: float | None


class JobsSummary(BaseModel):
    total: int
    by_status: dict[str, int]
    latency_ms: Latency = Field(
        description="Percentiles of succeeded jobs, submission to finish (null: none)."
    )


class UsageReport(BaseModel):
    start: datetime
    end: datetime
    group_by: list[GroupKey]
    rows: list[dict[str, UsageValue]] = Field(
        description="One per group: its keys (tenant also brings tenant_name), then calls, "
        "prompt_tokens, generated_tokens, flops and cost. Usage is resolved to the hour."
    )
    totals: UsageTotals
    jobs: JobsSummary = Field(description="Jobs created in the range.")


class SavingsEstimate(BaseModel):
    method: EstimateMethod = Field(
        description="shadow: the tenants' own tandem jobs answered again by the coordinator "
        "alone on the operator's account; llm_only_jobs: llm_only jobs the tenants submitted; "
        "offline_table: the evaluation table (TANDEM_SAVINGS_BASELINE_FILE); none."
    )
    sample_size: int = Field(description="Coordinator-alone runs behind the counterfactual.")
    detail: str


class ShadowShare(BaseModel):
    runs: int = Field(description="Succeeded tandem jobs measured by a succeeded shadow run.")
    share: float | None = Field(description="runs / succeeded tandem jobs of the range.")
    tandem_cost: str = Field(description="What those jobs cost the tenants.")
    shadow_cost: str = Field(description="What their shadow runs cost the operator.")


class DomainSavings(BaseModel):
    jobs: int
    tandem_cost: str
    counterfactual_cost: str | None
    sample_size: int
    shadow_runs: int = Field(description="Of the jobs, those measured by a shadow run.")


class SavingsReport(BaseModel):
    start: datetime
    end: datetime
    jobs: int = Field(description="Succeeded tandem jobs created in the range.")
    tandem_cost: str
    counterfactual_cost: str | None = Field(
        description="What the coordinator alone would have cost for the same jobs."
    )
    savings: str | None
    cost_share: float | None = Field(description="tandem_cost / counterfactual_cost.")
    estimate: SavingsEstimate
    shadow: ShadowShare
    by_domain: dict[str, DomainSavings]


class ScoreHistogram(BaseModel):
    edges: list[float]
    counts: list[int]


class DomainTruncation(BaseModel):
    jobs: int = Field(description="Jobs that reached a truncation decision.")
    levels: dict[str, int]
    reasons: dict[str, int]
    score_histogram: ScoreHistogram = Field(description="Every checkpoint score given.")


class TruncationReport(BaseModel):
    start: datetime
    end: datetime
    policy: Policy
    domains: dict[str, DomainTruncation]


class DailyCost(BaseModel):
    day: str
    cost: str


class BudgetReport(BaseModel):
    tenant_id: uuid.UUID
    period: BudgetPeriod
    period_start: datetime
    period_end: datetime | None
    cap: str
    spent: str
    reserved: str
    alert_threshold: float | None = Field(description="Share of the cap that sends the alert.")
    daily: list[DailyCost] = Field(description="Cost per UTC day of the period, to today.")
