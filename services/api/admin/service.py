"""Tenant, key and price management as plain functions over one unit of work each; the SQL is
:mod:`shared.tenants`, :mod:`shared.budgets` and :mod:`shared.prices` (shared with the ``tandem``
CLI), so this domain has no repository of its own.

Changing a tenant or revoking a key forgets the cached verification in this process at once
(other replicas within ``auth_cache_s``).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from services.api.admin.schemas import (
    BudgetOut,
    KeyCreate,
    KeyCreated,
    KeyOut,
    KeySpendOut,
    KeyUpdate,
    PriceCreate,
    PriceOut,
    TenantCreate,
    TenantCreated,
    TenantOut,
    TenantUpdate,
)
from services.api.db import unit_of_work
from services.api.keycache import KeyCache
from services.api.pricecache import PriceCache
from services.api.settings import ApiSettings
from shared import prices, tenants
from shared.budgets import current_budget, verify_ledger
from shared.budgets.keys import KeySpend, key_spend
from shared.db.models import ApiKey, ModelPrice, Tenant

log = logging.getLogger(__name__)


def _tenant_fields(session: Session, tenant: Tenant) -> dict[str, Any]:
    budget = current_budget(session, tenant)
    return {
        "id": tenant.id,
        "name": tenant.name,
        "active": tenant.active,
        "budget_cap": tenant.budget_cap,
        "budget_period": tenant.budget_period,
        "soft_alert_ratio": tenant.soft_alert_ratio,
        "hard_alert_ratio": tenant.hard_alert_ratio,
        "alert_url": tenant.alert_url,
        "max_cost_per_request": tenant.max_cost_per_request,
        "rate_limit_rpm": tenant.rate_limit_rpm,
        "max_concurrent_jobs": tenant.max_concurrent_jobs,
        "created_at": tenant.created_at,
        "budget": BudgetOut(
            period=budget.period_key, cap=budget.cap, spent=budget.spent, reserved=budget.reserved
        ),
    }


def _key_out(key: ApiKey, secret: str | None = None, spend: KeySpend | None = None) -> KeyOut:
    fields = {
        "id": key.id,
        "tenant_id": key.tenant_id,
        "name": key.name,
        "prefix": key.prefix,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
        "last_used_at": key.last_used_at,
        "budget_cap": key.budget_cap,
        "budget_period": key.budget_period,
        "expires_at": key.expires_at,
        "rate_limit_rpm": key.rate_limit_rpm,
        "soft_alert_ratio": key.soft_alert_ratio,
        "hard_alert_ratio": key.hard_alert_ratio,
        "spend": None if spend is None else KeySpendOut(**spend.__dict__),
    }
    return KeyCreated(**fields, key=secret) if secret else KeyOut(**fields)


def keys_with_spend(session: Session, tenant: Tenant, keys: list[ApiKey]) -> list[KeyOut]:
    """The tenant's ``keys``, each with its spend in its current period (one read)."""
    spend = key_spend(session, tenant, keys)
    return [_key_out(k, spend=spend[k.id]) for k in keys]


def create_tenant(settings: ApiSettings, body: TenantCreate) -> TenantCreated:
    with unit_of_work(settings) as session:
        tenant = tenants.create_tenant(session, **body.model_dump())
        session.refresh(tenant)
        return TenantCreated(
            **_tenant_fields(session, tenant), webhook_secret=tenant.webhook_secret
        )


def list_tenants(settings: ApiSettings) -> list[TenantOut]:
    with unit_of_work(settings) as session:
        return [TenantOut(**_tenant_fields(session, t)) for t in tenants.list_tenants(session)]


def get_tenant(settings: ApiSettings, tenant_id: uuid.UUID) -> TenantOut:
    with unit_of_work(settings) as session:
        return TenantOut(**_tenant_fields(session, tenants.get_tenant(session, tenant_id)))


def update_tenant(
    settings: ApiSettings, cache: KeyCache, tenant_id: uuid.UUID, body: TenantUpdate
) -> TenantOut:
    sent = body.model_dump(exclude_unset=True)
    removed = [name for name, value in sent.items() if value is None]  # refused unless clearable
    changes = {name: value for name, value in sent.items() if value is not None}
    with unit_of_work(settings) as session:
        tenant = tenants.get_tenant(session, tenant_id)
        tenants.update_tenant(session, tenant, **changes, clear=removed)
        session.refresh(tenant)
        out = TenantOut(**_tenant_fields(session, tenant))
    cache.forget_tenant(tenant_id)
    return out


def create_key(settings: ApiSettings, tenant_id: uuid.UUID, body: KeyCreate) -> KeyOut:
    with unit_of_work(settings) as session:
        tenant = tenants.get_tenant(session, tenant_id)
        issued = tenants.create_key(
            session, tenant, body.name, **body.model_dump(include=set(tenants.KEY_LIMITS))
        )
        session.refresh(issued.key)
        return _key_out(issued.key, issued.secret)


def list_keys(settings: ApiSettings, tenant_id: uuid.UUID) -> list[KeyOut]:
    """The tenant's keys, each with its spend in its current period."""
    with unit_of_work(settings) as session:
        tenant = tenants.get_tenant(session, tenant_id)
        return keys_with_spend(session, tenant, tenants.list_keys(session, tenant))


def get_key(settings: ApiSettings, key_id: uuid.UUID) -> KeyOut:
    """One key with its spend in its current period."""
    with unit_of_work(settings) as session:
        key = tenants.get_key(session, str(key_id))
        return keys_with_spend(session, tenants.get_tenant(session, key.tenant_id), [key])[0]


def update_key(
    settings: ApiSettings, cache: KeyCache, key_id: uuid.UUID, body: KeyUpdate
) -> KeyOut:
    """Change the limits sent (null clears one); this process forgets the key's cached copy."""
    with unit_of_work(settings) as session:
        key = tenants.update_key(session, str(key_id), body.model_dump(exclude_unset=True))
        session.refresh(key)
        key_hash = key.key_hash
        out = keys_with_spend(session, tenants.get_tenant(session, key.tenant_id), [key])[0]
    cache.forget_key(key_hash)
    return out


def revoke_key(settings: ApiSettings, cache: KeyCache, key_id: uuid.UUID) -> KeyOut:
    with unit_of_work(settings) as session:
        key = tenants.revoke_key(session, str(key_id))
        session.refresh(key)
        out = _key_out(key)
        key_hash = key.key_hash
    cache.forget_key(key_hash)
    return out


def verify(settings: ApiSettings) -> dict[str, Any]:
    with unit_of_work(settings) as session:
        problems = verify_ledger(session)
    return {"ok": not problems, "problems": [p.__dict__ for p in problems]}


def _price_out(row: ModelPrice, in_force: bool) -> PriceOut:
    return PriceOut(
        id=row.id,
        model=row.model,
        prompt_per_mtok=row.prompt_per_mtok,
        generated_per_mtok=row.generated_per_mtok,
        cached_prompt_per_mtok=row.cached_prompt_per_mtok,
        effective_from=row.effective_from,
        source=row.source,
        created_at=row.created_at,
        in_force=in_force,
    )


def list_prices(settings: ApiSettings, model: str | None) -> list[PriceOut]:
    with unit_of_work(settings) as session:
        return [_price_out(row, current) for row, current in prices.listing(session, model)]


def set_price(settings: ApiSettings, cache: PriceCache, body: PriceCreate) -> PriceOut:
    """Add a price; this process charges it to new jobs at once (the others within
    ``price_refresh_s``)."""
    with unit_of_work(settings) as session:
        row = prices.set_price(session, **body.model_dump())
        in_force = next(c for r, c in prices.listing(session, row.model) if r.id == row.id)
        out = _price_out(row, in_force)
    try:
        cache.refresh()
    except SQLAlchemyError:
        log.warning("prices could not be re-read after a change", exc_info=True)
    return out
