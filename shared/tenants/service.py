"""Tenant and key management, shared by the admin API and the ``tandem`` CLI.

A key is ``tdm_<8 hex>_<43 url-safe chars>``: 256 bits of entropy, so a plain SHA-256 is a
sufficient hash (no salt or slow KDF is needed against guessing). Only the hash and the visible
prefix ``tdm_<8 hex>`` are stored; the full key is returned once, at creation.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.budgets import current_budget, period_key
from shared.budgets import repository as budget_repo
from shared.db.models import ApiKey, BudgetPeriod, Tenant
from shared.errors import NotFoundError, ValidationFailed
from shared.tenants import repository as repo
from shared.tenants.errors import AuthenticationFailed, Conflict

KEY_SCHEME = "tdm"


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str  # the full key: shown once, never stored


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _check_limits(
    cap: Decimal | None,
    soft_alert_ratio: Decimal | None,
    max_cost_per_request: Decimal | None,
    rate_limit_rpm: int | None,
    max_concurrent_jobs: int | None,
) -> None:
    if cap is not None and cap < 0:
        raise ValidationFailed("the budget cap cannot be negative", field="budget_cap")
    if soft_alert_ratio is not None and not 0 < soft_alert_ratio <= 1:
        raise ValidationFailed("soft_alert_ratio must be in (0, 1]", field="soft_alert_ratio")
    if max_cost_per_request is not None and max_cost_per_request <= 0:
        raise ValidationFailed(
            "max_cost_per_request must be positive", field="max_cost_per_request"
        )
    if rate_limit_rpm is not None and rate_limit_rpm <= 0:
        raise ValidationFailed("rate_limit_rpm must be positive", field="rate_limit_rpm")
    if max_concurrent_jobs is not None and max_concurrent_jobs <= 0:
        raise ValidationFailed("max_concurrent_jobs must be positive", field="max_concurrent_jobs")


def create_tenant(
    session: Session,
    name: str,
    *,
    budget_cap: Decimal = Decimal(0),
    budget_period: BudgetPeriod = BudgetPeriod.MONTHLY,
    soft_alert_ratio: Decimal = Decimal("0.8"),
    max_cost_per_request: Decimal | None = None,
    rate_limit_rpm: int | None = None,
    max_concurrent_jobs: int | None = None,
) -> Tenant:
    name = name.strip()
    if not name:
        raise ValidationFailed("a tenant needs a name", field="name")
    _check_limits(
        budget_cap, soft_alert_ratio, max_cost_per_request, rate_limit_rpm, max_concurrent_jobs
    )
    if repo.tenant_by_name(session, name) is not None:
        raise Conflict(f"a tenant named {name!r} already exists", field="name")
    tenant = Tenant(
        id=uuid.uuid4(),
        name=name,
        budget_cap=budget_cap,
        budget_period=BudgetPeriod(budget_period).value,
        soft_alert_ratio=soft_alert_ratio,
        max_cost_per_request=max_cost_per_request,
        rate_limit_rpm=rate_limit_rpm,
        max_concurrent_jobs=max_concurrent_jobs,
        webhook_secret=secrets.token_urlsafe(32),
    )
    session.add(tenant)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent create with the same name
        raise Conflict(f"a tenant named {name!r} already exists", field="name") from exc
    return tenant


def get_tenant(session: Session, ref: str | uuid.UUID) -> Tenant:
    """A tenant by id or by name."""
    tenant: Tenant | None
    try:
        tenant = session.get(Tenant, uuid.UUID(str(ref)))
    except ValueError:
        tenant = repo.tenant_by_name(session, str(ref))
    if tenant is None:
        raise NotFoundError(f"tenant {ref} not found", field="tenant")
    return tenant


def list_tenants(session: Session) -> list[Tenant]:
    return repo.all_tenants(session)


def update_tenant(
    session: Session,
    tenant: Tenant,
    *,
    budget_cap: Decimal | None = None,
    budget_period: BudgetPeriod | None = None,
    soft_alert_ratio: Decimal | None = None,
    max_cost_per_request: Decimal | None = None,
    rate_limit_rpm: int | None = None,
    max_concurrent_jobs: int | None = None,
    active: bool | None = None,
) -> Tenant:
    """Change limits; a new cap also applies to the current period's budget row."""
    _check_limits(
        budget_cap, soft_alert_ratio, max_cost_per_request, rate_limit_rpm, max_concurrent_jobs
    )
    if budget_period is not None:
        tenant.budget_period = BudgetPeriod(budget_period).value
    if budget_cap is not None:
        tenant.budget_cap = budget_cap
    if soft_alert_ratio is not None:
        tenant.soft_alert_ratio = soft_alert_ratio
    if max_cost_per_request is not None:
        tenant.max_cost_per_request = max_cost_per_request
    if rate_limit_rpm is not None:
        tenant.rate_limit_rpm = rate_limit_rpm
    if max_concurrent_jobs is not None:
        tenant.max_concurrent_jobs = max_concurrent_jobs
    if active is not None:
        tenant.active = active
    session.flush()
    if budget_cap is not None:
        current_budget(session, tenant)
        budget_repo.set_cap(session, tenant.id, period_key(tenant.budget_period), tenant.budget_cap)
    return tenant


def create_key(session: Session, tenant: Tenant, name: str = "") -> IssuedKey:
    visible = f"{KEY_SCHEME}_{secrets.token_hex(4)}"
    secret = f"{visible}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        id=uuid.uuid4(), tenant_id=tenant.id, name=name, prefix=visible, key_hash=hash_key(secret)
    )
    session.add(key)
    session.flush()
    return IssuedKey(key, secret)


def list_keys(session: Session, tenant: Tenant) -> list[ApiKey]:
    return repo.keys_of(session, tenant.id)


def revoke_key(session: Session, ref: str, tenant: Tenant | None = None) -> ApiKey:
    """Revoke by id or visible prefix; revoking twice keeps the first revocation time."""
    key = repo.key_by_id_or_prefix(session, ref)
    if key is None or (tenant is not None and key.tenant_id != tenant.id):
        raise NotFoundError(f"API key {ref} not found", field="key")
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        session.flush()
    return key


def authenticate(session: Session, secret: str) -> Tenant:
    """The tenant a presented key belongs to; one message for every failure, so a caller
    cannot tell a revoked key from a never-issued one."""
    failed = AuthenticationFailed(
        "missing, invalid or revoked API key: send 'Authorization: Bearer <key>'"
    )
    if not secret.startswith(f"{KEY_SCHEME}_") or len(secret) > 128:
        raise failed
    found = repo.key_with_tenant(session, hash_key(secret))
    if found is None:
        raise failed
    key, tenant = found
    if key.revoked_at is not None or not tenant.active:
        raise failed
    repo.touch_key(session, key.id, datetime.now(UTC))
    return tenant
