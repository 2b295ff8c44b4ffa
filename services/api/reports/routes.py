"""Cost and outcome reports for a tenant (its API key) or the operator (the admin key):
thin wrappers around :mod:`services.api.reports.service`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from services.api.deps import SettingsDep, ViewerDep
from services.api.reports import service
from services.api.reports.baseline import load_baseline
from services.api.reports.export import usage_csv
from services.api.reports.params import GroupKey, group_keys, scope_for, time_range
from services.api.reports.schemas import (
    BudgetReport,
    SavingsReport,
    TruncationReport,
    UsageReport,
)
from services.api.schemas import ErrorOut
from shared.db.models import Policy
from shared.errors import ValidationFailed

T = TypeVar("T")

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (401, 403, 404, 422, 429)
}
router = APIRouter(prefix="/v1/reports", tags=["reports"], responses=ERRORS)

Start = Annotated[
    str | None,
    Query(max_length=64, description="ISO date or datetime (UTC); default: start of the month."),
]
End = Annotated[
    str | None,
    Query(max_length=64, description="ISO date (that whole day) or datetime; default: now."),
]
TenantFilter = Annotated[uuid.UUID | None, Query(description="Admin key only: one tenant.")]


@router.get("/usage", response_model=UsageReport, responses={200: {"content": {"text/csv": {}}}})
async def usage(
    viewer: ViewerDep,
    settings: SettingsDep,
    start: Start = None,
    end: End = None,
    group_by: Annotated[
        str,
        Query(
            max_length=200,
            description="Comma list of day|hour|model|role|domain|policy|tenant|key (key: with "
            "day, hour and tenant only).",
        ),
    ] = "day",
    format: Annotated[
        Literal["json", "csv"] | None, Query(description="csv: the same as Accept: text/csv.")
    ] = None,
    tenant_id: TenantFilter = None,
    accept: Annotated[str | None, Header()] = None,
) -> Any:
    """Spend, tokens, FLOPs and calls per group, and the range's jobs with their outcomes."""
    keys = group_keys(group_by)
    scope = scope_for(viewer, tenant_id, by_tenant=GroupKey.TENANT in keys)
    span = time_range(start, end, datetime.now(UTC))
    report = await run_in_threadpool(
        service.read_usage,
        settings.database_url,
        viewer.is_admin,
        scope,
        span,
        keys,
        settings.report_max_rows,
    )
    if format == "csv" or (format is None and "text/csv" in (accept or "").lower()):
        return Response(
            usage_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'inline; filename="tandem-usage.csv"'},
        )
    return report


@router.get("/savings", response_model=SavingsReport)
async def savings(
    viewer: ViewerDep,
    settings: SettingsDep,
    start: Start = None,
    end: End = None,
    tenant_id: TenantFilter = None,
) -> SavingsReport:
    """Tandem's cost against the coordinator alone on the same jobs, saying how the
    counterfactual was estimated and on how many coordinator-alone runs."""
    scope = scope_for(viewer, tenant_id)
    span = time_range(start, end, datetime.now(UTC))
    baseline = load_baseline(settings.savings_baseline_file)
    return await run_in_threadpool(
        service.read_savings,
        settings.database_url,
        viewer.is_admin,
        scope,
        span,
        baseline,
        settings.savings_min_shadow_jobs,
    )


@router.get("/truncation", response_model=TruncationReport)
async def truncation(
    viewer: ViewerDep,
    settings: SettingsDep,
    start: Start = None,
    end: End = None,
    tenant_id: TenantFilter = None,
    policy: Annotated[
        Policy, Query(description="Whose decisions (baselines fix their level).")
    ] = Policy.TANDEM,
) -> TruncationReport:
    """Truncation levels, termination reasons and classifier score histograms per domain."""
    scope = scope_for(viewer, tenant_id)
    span = time_range(start, end, datetime.now(UTC))
    return await run_in_threadpool(
        service.read_truncation, settings.database_url, viewer.is_admin, scope, span, policy
    )


@router.get("/budget", response_model=BudgetReport)
async def budget(
    viewer: ViewerDep, settings: SettingsDep, tenant_id: TenantFilter = None
) -> BudgetReport:
    """The current budget period: cap, spent, reserved, alert threshold and cost per day."""
    scope = scope_for(viewer, tenant_id)
    if scope.tenant_id is None:
        raise ValidationFailed(
            "the admin key must name a tenant: pass tenant_id", field="tenant_id"
        )
    return await run_in_threadpool(service.read_budget, settings.database_url, scope.tenant_id)
