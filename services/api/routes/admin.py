"""Tenant and key management, guarded by the admin key (X-Admin-Key or Bearer)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from services.api.deps import SettingsDep, require_admin
from services.api.schemas import (
    BudgetOut,
    ErrorOut,
    KeyCreate,
    KeyCreated,
    KeyOut,
    TenantCreate,
    TenantCreated,
    TenantOut,
    TenantUpdate,
)
from services.api.settings import ApiSettings
from shared import tenants
from shared.budgets import current_budget, verify_ledger
from shared.db.models import ApiKey, Tenant
from shared.db.session import unit_of_work

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (401, 403, 404, 409, 422)
}
router = APIRouter(
    prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)], responses=ERRORS
)


def _tenant_out(session: Session, tenant: Tenant, cls: type[TenantOut] = TenantOut) -> Any:
    budget = current_budget(session, tenant)
    extra = {"webhook_secret": tenant.webhook_secret} if cls is TenantCreated else {}
    return cls(
        id=tenant.id,
        name=tenant.name,
        active=tenant.active,
        budget_cap=tenant.budget_cap,
        budget_period=tenant.budget_period,
        soft_alert_ratio=tenant.soft_alert_ratio,
        max_cost_per_request=tenant.max_cost_per_request,
        rate_limit_rpm=tenant.rate_limit_rpm,
        max_concurrent_jobs=tenant.max_concurrent_jobs,
        created_at=tenant.created_at,
        budget=BudgetOut(
            period=budget.period_key, cap=budget.cap, spent=budget.spent, reserved=budget.reserved
        ),
        **extra,
    )


def _key_out(key: ApiKey, secret: str | None = None) -> KeyOut:
    fields = {
        "id": key.id,
        "tenant_id": key.tenant_id,
        "name": key.name,
        "prefix": key.prefix,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
        "last_used_at": key.last_used_at,
    }
    return KeyCreated(**fields, key=secret) if secret else KeyOut(**fields)


def _create_tenant(settings: ApiSettings, body: TenantCreate) -> TenantCreated:
    with unit_of_work(settings.database_url) as session:
        tenant = tenants.create_tenant(session, **body.model_dump())
        session.refresh(tenant)
        out: TenantCreated = _tenant_out(session, tenant, TenantCreated)
        return out


@router.post("/tenants", status_code=201, response_model=TenantCreated)
async def create_tenant(body: TenantCreate, settings: SettingsDep) -> TenantCreated:
    """Create a tenant; its webhook secret is shown in this answer only."""
    return await run_in_threadpool(_create_tenant, settings, body)


def _list_tenants(settings: ApiSettings) -> list[TenantOut]:
    with unit_of_work(settings.database_url) as session:
        return [_tenant_out(session, t) for t in tenants.list_tenants(session)]


@router.get("/tenants", response_model=list[TenantOut])
async def list_tenants(settings: SettingsDep) -> list[TenantOut]:
    return await run_in_threadpool(_list_tenants, settings)


def _get_tenant(settings: ApiSettings, tenant_id: uuid.UUID) -> TenantOut:
    with unit_of_work(settings.database_url) as session:
        out: TenantOut = _tenant_out(session, tenants.get_tenant(session, tenant_id))
        return out


@router.get("/tenants/{tenant_id}", response_model=TenantOut)
async def get_tenant(tenant_id: uuid.UUID, settings: SettingsDep) -> TenantOut:
    return await run_in_threadpool(_get_tenant, settings, tenant_id)


def _update_tenant(settings: ApiSettings, tenant_id: uuid.UUID, body: TenantUpdate) -> TenantOut:
    with unit_of_work(settings.database_url) as session:
        tenant = tenants.get_tenant(session, tenant_id)
        tenants.update_tenant(session, tenant, **body.model_dump(exclude_none=True))
        session.refresh(tenant)
        out: TenantOut = _tenant_out(session, tenant)
        return out


@router.patch("/tenants/{tenant_id}", response_model=TenantOut)
async def update_tenant(
    tenant_id: uuid.UUID, body: TenantUpdate, settings: SettingsDep
) -> TenantOut:
    """Change a tenant's budget and limits; a new cap applies to the current period too."""
    return await run_in_threadpool(_update_tenant, settings, tenant_id, body)


def _create_key(settings: ApiSettings, tenant_id: uuid.UUID, body: KeyCreate) -> KeyOut:
    with unit_of_work(settings.database_url) as session:
        tenant = tenants.get_tenant(session, tenant_id)
        issued = tenants.create_key(session, tenant, body.name)
        session.refresh(issued.key)
        return _key_out(issued.key, issued.secret)


@router.post("/tenants/{tenant_id}/keys", status_code=201, response_model=KeyCreated)
async def create_key(tenant_id: uuid.UUID, body: KeyCreate, settings: SettingsDep) -> KeyOut:
    """Issue an API key; the full key is in this answer only (stored as a hash)."""
    return await run_in_threadpool(_create_key, settings, tenant_id, body)


def _list_keys(settings: ApiSettings, tenant_id: uuid.UUID) -> list[KeyOut]:
    with unit_of_work(settings.database_url) as session:
        tenant = tenants.get_tenant(session, tenant_id)
        return [_key_out(k) for k in tenants.list_keys(session, tenant)]


@router.get("/tenants/{tenant_id}/keys", response_model=list[KeyOut])
async def list_keys(tenant_id: uuid.UUID, settings: SettingsDep) -> list[KeyOut]:
    return await run_in_threadpool(_list_keys, settings, tenant_id)


def _revoke_key(settings: ApiSettings, key_id: uuid.UUID) -> KeyOut:
    with unit_of_work(settings.database_url) as session:
        key = tenants.revoke_key(session, str(key_id))
        session.refresh(key)
        return _key_out(key)


@router.post("/keys/{key_id}/revoke", response_model=KeyOut)
async def revoke_key(key_id: uuid.UUID, settings: SettingsDep) -> KeyOut:
    return await run_in_threadpool(_revoke_key, settings, key_id)


def _verify(settings: ApiSettings) -> dict[str, Any]:
    with unit_of_work(settings.database_url) as session:
        problems = verify_ledger(session)
    return {"ok": not problems, "problems": [p.__dict__ for p in problems]}


@router.get("/ledger/verify")
async def verify(settings: SettingsDep) -> dict[str, Any]:
    """The ledger invariants (spent = Σ settled, reserved = Σ open holds, spent ≤ cap)."""
    return await run_in_threadpool(_verify, settings)
