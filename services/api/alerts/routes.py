"""``GET /v1/alerts`` (the tenant's own, by its API key) and ``GET /v1/admin/alerts`` (every
tenant's, by the admin key): budget thresholds crossed, newest first."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from services.api.alerts import service
from services.api.alerts.schemas import AdminAlertList, AlertList
from services.api.deps import SettingsDep, TenantDep, require_admin
from services.api.schemas import ErrorOut

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (401, 403, 422, 429)
}
Limit = Annotated[int, Query(ge=1, le=500, description="The newest this many alerts.")]

router = APIRouter(prefix="/v1/alerts", tags=["alerts"], responses=ERRORS)
admin_router = APIRouter(
    prefix="/v1/admin/alerts",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses=ERRORS,
)


@router.get("", response_model=AlertList)
async def tenant_alerts(tenant: TenantDep, settings: SettingsDep, limit: Limit = 50) -> AlertList:
    """This tenant's budget alerts: each threshold at most once per budget period."""
    return await run_in_threadpool(service.tenant_alerts, settings, tenant.id, limit)


@admin_router.get("", response_model=AdminAlertList)
async def all_alerts(
    settings: SettingsDep,
    tenant_id: Annotated[uuid.UUID | None, Query(description="One tenant only.")] = None,
    limit: Limit = 50,
) -> AdminAlertList:
    """Every tenant's budget alerts, with both deliveries' states."""
    return await run_in_threadpool(service.all_alerts, settings, tenant_id, limit)
