"""Tenant-facing key routes: each key's limits and its spend in its current period."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from services.api.admin.schemas import KeyOut
from services.api.deps import CallerDep, SettingsDep, TenantDep
from services.api.keys import service
from services.api.schemas import ErrorOut

ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorOut} for code in (401, 429)}
router = APIRouter(prefix="/v1/keys", tags=["keys"], responses=ERRORS)


@router.get("", response_model=list[KeyOut])
async def list_keys(tenant: TenantDep, settings: SettingsDep) -> list[KeyOut]:
    """The tenant's keys (revoked ones too), each with its cap, expiry, rate, and spend."""
    return await run_in_threadpool(service.list_keys, settings, tenant)


@router.get("/current", response_model=KeyOut)
async def current_key(caller: CallerDep, settings: SettingsDep) -> KeyOut:
    """The key this request carries: its limits and its spend in its current period."""
    return await run_in_threadpool(service.current_key, settings, caller)
