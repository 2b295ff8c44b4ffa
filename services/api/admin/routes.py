"""Tenant, key and price management, guarded by the admin key (X-Admin-Key or Bearer)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from services.api.admin import service
from services.api.admin.schemas import (
    KeyCreate,
    KeyCreated,
    KeyOut,
    KeyUpdate,
    PriceCreate,
    PriceOut,
    TenantCreate,
    TenantCreated,
    TenantOut,
    TenantUpdate,
)
from services.api.deps import SettingsDep, require_admin
from services.api.schemas import ErrorOut
from services.api.validation import StorableText

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (401, 403, 404, 409, 422)
}
router = APIRouter(
    prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)], responses=ERRORS
)


@router.post("/tenants", status_code=201, response_model=TenantCreated)
async def create_tenant(body: TenantCreate, settings: SettingsDep) -> TenantCreated:
    """Create a tenant; its webhook secret is shown in this answer only."""
    return await run_in_threadpool(service.create_tenant, settings, body)


@router.get("/tenants", response_model=list[TenantOut])
async def list_tenants(settings: SettingsDep) -> list[TenantOut]:
    return await run_in_threadpool(service.list_tenants, settings)


@router.get("/tenants/{tenant_id}", response_model=TenantOut)
async def get_tenant(tenant_id: uuid.UUID, settings: SettingsDep) -> TenantOut:
    return await run_in_threadpool(service.get_tenant, settings, tenant_id)


@router.patch("/tenants/{tenant_id}", response_model=TenantOut)
async def update_tenant(
    request: Request, tenant_id: uuid.UUID, body: TenantUpdate, settings: SettingsDep
) -> TenantOut:
    """Change a tenant's budget and limits; a new cap applies to the current period too."""
    cache = request.app.state.key_cache
    return await run_in_threadpool(service.update_tenant, settings, cache, tenant_id, body)


@router.post("/tenants/{tenant_id}/keys", status_code=201, response_model=KeyCreated)
async def create_key(tenant_id: uuid.UUID, body: KeyCreate, settings: SettingsDep) -> KeyOut:
    """Issue an API key; the full key is in this answer only (stored as a hash)."""
    return await run_in_threadpool(service.create_key, settings, tenant_id, body)


@router.get("/tenants/{tenant_id}/keys", response_model=list[KeyOut])
async def list_keys(tenant_id: uuid.UUID, settings: SettingsDep) -> list[KeyOut]:
    return await run_in_threadpool(service.list_keys, settings, tenant_id)


@router.get("/keys/{key_id}", response_model=KeyOut)
async def get_key(key_id: uuid.UUID, settings: SettingsDep) -> KeyOut:
    """A key's limits and its spend in its current period."""
    return await run_in_threadpool(service.get_key, settings, key_id)


@router.patch("/keys/{key_id}", response_model=KeyOut)
async def update_key(
    request: Request, key_id: uuid.UUID, body: KeyUpdate, settings: SettingsDep
) -> KeyOut:
    """Change a key's cap, period, expiry or rate (null clears one); a new cap applies to the
    current period too. Takes effect here at once, on every replica within a few seconds."""
    cache = request.app.state.key_cache
    return await run_in_threadpool(service.update_key, settings, cache, key_id, body)


@router.post("/keys/{key_id}/revoke", response_model=KeyOut)
async def revoke_key(request: Request, key_id: uuid.UUID, settings: SettingsDep) -> KeyOut:
    """Revoke a key: refused at once by this replica, by every replica within a few seconds."""
    cache = request.app.state.key_cache
    return await run_in_threadpool(service.revoke_key, settings, cache, key_id)


@router.get("/prices", response_model=list[PriceOut])
async def list_prices(
    settings: SettingsDep,
    model: StorableText | None = Query(None, max_length=200, description="Only this model's rows."),
) -> list[PriceOut]:
    """Every price row, each model's newest first: the one in force now is marked; those before
    it are what older jobs were admitted under."""
    return await run_in_threadpool(service.list_prices, settings, model)


@router.post("/prices", status_code=201, response_model=PriceOut)
async def set_price(request: Request, body: PriceCreate, settings: SettingsDep) -> PriceOut:
    """Add a model's price from a time on (rows are never changed). Jobs already admitted keep
    the prices they were admitted under; new jobs are charged this one once it is in force."""
    cache = request.app.state.price_cache
    return await run_in_threadpool(service.set_price, settings, cache, body)


@router.get("/ledger/verify")
async def verify(settings: SettingsDep) -> dict[str, Any]:
    """The ledger invariants (spent = Σ settled, reserved = Σ open holds, spent ≤ cap)."""
    return await run_in_threadpool(service.verify, settings)
