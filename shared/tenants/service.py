"""Tenant and key management, shared by the admin API and the ``tandem`` CLI.

A key is ``tdm_<8 hex>_<43 url-safe chars>``: 256 bits of entropy, so a plain SHA-256 is a
sufficient hash (no salt or slow KDF is needed against guessing). Only the hash and the visible
prefix ``tdm_<8 hex>`` are stored; the full key is returned once, at creation.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.budgets import current_budget, period_key
from shared.budgets import key_repository as key_budgets
from shared.budgets import repository as budget_repo
from shared.db.models import ApiKey, BudgetPeriod, Tenant
from shared.egress import EgressRefused, check_url
from shared.errors import NotFoundError, ValidationFailed
from shared.tenants import repository as repo
from shared.tenants.errors import AuthenticationFailed, Conflict, KeyCapAboveTenant, KeyExpired

KEY_SCHEME = "tdm"
MAX_URL_LENGTH = 2048  # the column's


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


def _check_alerts(soft: Decimal, hard: Decimal, alert_url: str | None) -> None:
    """Thresholds in order, and an alert URL the egress policy lets webhooks reach (checked
    again at each delivery: what a name resolves to can change)."""
    if not 0 < hard <= 1:
        raise ValidationFailed("hard_alert_ratio must be in (0, 1]", field="hard_alert_ratio")
    if soft > hard:
        raise ValidationFailed(
            f"soft_alert_ratio {soft} is above hard_alert_ratio {hard}", field="soft_alert_ratio"
        )
    if alert_url:
        if len(alert_url) > MAX_URL_LENGTH:
            raise ValidationFailed(
                f"alert_url is longer than {MAX_URL_LENGTH} characters", field="alert_url"
            )
        if not alert_url.isascii() or any(ord(c) <= 32 or ord(c) == 127 for c in alert_url):
            raise ValidationFailed(
                "alert_url must be ASCII without spaces or control characters "
                "(percent-encode the rest)",
                field="alert_url",
            )
        try:
            check_url(alert_url)
        except EgressRefused as refused:
            raise ValidationFailed(f"alert_url refused: {refused}", field="alert_url") from None


def create_tenant(
    session: Session,
    name: str,
    *,
    budget_cap: Decimal = Decimal(0),
    budget_period: BudgetPeriod = BudgetPeriod.MONTHLY,
    soft_alert_ratio: Decimal = Decimal("0.8"),
    hard_alert_ratio: Decimal = Decimal(1),
    alert_url: str | None = None,
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
    _check_alerts(soft_alert_ratio, hard_alert_ratio, alert_url)
    if repo.tenant_by_name(session, name) is not None:
        raise Conflict(f"a tenant named {name!r} already exists", field="name")
    tenant = Tenant(
        id=uuid.uuid4(),
        name=name,
        budget_cap=budget_cap,
        budget_period=BudgetPeriod(budget_period).value,
        soft_alert_ratio=soft_alert_ratio,
        hard_alert_ratio=hard_alert_ratio,
        alert_url=alert_url or None,
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


# What a tenant may be without: no alert URL, no per-request maximum, the default rate limit, no
# concurrent-jobs limit. Its cap, period, thresholds and state always have a value.
CLEARABLE_LIMITS = frozenset(
    {"alert_url", "max_cost_per_request", "rate_limit_rpm", "max_concurrent_jobs"}
)


def update_tenant(
    session: Session,
    tenant: Tenant,
    *,
    budget_cap: Decimal | None = None,
    budget_period: BudgetPeriod | None = None,
    soft_alert_ratio: Decimal | None = None,
    hard_alert_ratio: Decimal | None = None,
    alert_url: str | None = None,
    max_cost_per_request: Decimal | None = None,
    rate_limit_rpm: int | None = None,
    max_concurrent_jobs: int | None = None,
    active: bool | None = None,
    clear: Collection[str] = (),
) -> Tenant:
    """Change limits (None: unchanged; an empty ``alert_url`` removes it) and remove those named
    in ``clear`` (of :data:`CLEARABLE_LIMITS`); a new cap also applies to the current period's
    budget row."""
    for name in clear:
        if name not in CLEARABLE_LIMITS:
            raise ValidationFailed(f"{name} cannot be removed, only changed", field=name)
    _check_limits(
        budget_cap, soft_alert_ratio, max_cost_per_request, rate_limit_rpm, max_concurrent_jobs
    )
    _check_alerts(
        soft_alert_ratio or tenant.soft_alert_ratio,
        hard_alert_ratio or tenant.hard_alert_ratio,
        alert_url,
    )
    if hard_alert_ratio is not None:
        tenant.hard_alert_ratio = hard_alert_ratio
    if alert_url is not None:
        tenant.alert_url = alert_url or None
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
    for name in clear:
        setattr(tenant, name, None)
    session.flush()
    if budget_cap is not None:
        current_budget(session, tenant)
        budget_repo.set_cap(session, tenant.id, period_key(tenant.budget_period), tenant.budget_cap)
    return tenant


@dataclass(frozen=True)
class Caller:
    """Who a verified key speaks for: its tenant, and the key with its own limits (detached
    values, so a cached caller never touches a session)."""

    tenant: Tenant
    key_id: uuid.UUID
    budget_cap: Decimal | None
    budget_period: str  # the key's own, else its tenant's
    expires_at: datetime | None
    rate_limit_rpm: int | None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


def caller_of(key: ApiKey, tenant: Tenant) -> Caller:
    return Caller(
        tenant=tenant,
        key_id=key.id,
        budget_cap=key.budget_cap,
        budget_period=key.budget_period or tenant.budget_period,
        expires_at=key.expires_at,
        rate_limit_rpm=key.rate_limit_rpm,
    )


# The key limits :func:`create_key` and :func:`update_key` take.
KEY_LIMITS = (
    "budget_cap",
    "budget_period",
    "expires_at",
    "rate_limit_rpm",
    "soft_alert_ratio",
    "hard_alert_ratio",
)


def _check_key_limits(tenant: Tenant, key: ApiKey) -> None:
    """A key's limits as they would be stored: within its tenant's."""
    if key.budget_cap is not None and key.budget_cap < 0:
        raise ValidationFailed("the key's budget cap cannot be negative", field="budget_cap")
    if key.budget_cap is not None and key.budget_cap > tenant.budget_cap:
        raise KeyCapAboveTenant(key.budget_cap, tenant.budget_cap)
    if key.rate_limit_rpm is not None and key.rate_limit_rpm <= 0:
        raise ValidationFailed("rate_limit_rpm must be positive", field="rate_limit_rpm")
    if key.expires_at is not None and key.expires_at.tzinfo is None:
        raise ValidationFailed("expires_at needs a timezone (e.g. Z)", field="expires_at")
    if key.budget_period is not None:
        key.budget_period = BudgetPeriod(key.budget_period).value
    if key.soft_alert_ratio is not None and not 0 < key.soft_alert_ratio <= 1:
        raise ValidationFailed("soft_alert_ratio must be in (0, 1]", field="soft_alert_ratio")
    _check_alerts(
        key.soft_alert_ratio or tenant.soft_alert_ratio,
        key.hard_alert_ratio or tenant.hard_alert_ratio,
        None,
    )


def create_key(session: Session, tenant: Tenant, name: str = "", **limits: Any) -> IssuedKey:
    """Issue a key; ``limits`` are any of :data:`KEY_LIMITS` (a cap above the tenant's is
    refused, and so is an expiry already past)."""
    visible = f"{KEY_SCHEME}_{secrets.token_hex(4)}"
    secret = f"{visible}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        id=uuid.uuid4(), tenant_id=tenant.id, name=name, prefix=visible, key_hash=hash_key(secret)
    )
    _set_key_limits(key, limits)
    _check_key_limits(tenant, key)
    if key.expires_at is not None and key.expires_at <= datetime.now(UTC):
        raise ValidationFailed("expires_at is in the past", field="expires_at")
    session.add(key)
    session.flush()
    # Its current period's row now, as a tenant's is made with the tenant: the key's first
    # admission is then the one statement, not a refusal that makes the row and a retry.
    _ensure_key_budget(key, tenant, session)
    return IssuedKey(key, secret)


def _ensure_key_budget(key: ApiKey, tenant: Tenant, session: Session) -> None:
    period = period_key(caller_of(key, tenant).budget_period)
    key_budgets.ensure_key_budget(session, key.id, period, key.budget_cap)


def _set_key_limits(key: ApiKey, limits: dict[str, Any]) -> None:
    unknown = set(limits) - set(KEY_LIMITS)
    if unknown:
        raise ValidationFailed(f"unknown key limit {sorted(unknown)[0]}", field=sorted(unknown)[0])
    for name, value in limits.items():
        setattr(key, name, value)


def update_key(
    session: Session, ref: str, changes: dict[str, Any], tenant: Tenant | None = None
) -> ApiKey:
    """Set the key limits named in ``changes`` (None clears one); a new cap also applies to
    the key's budget row of the current period."""
    key = get_key(session, ref, tenant)
    owner = get_tenant(session, key.tenant_id)
    _set_key_limits(key, changes)
    _check_key_limits(owner, key)
    session.flush()
    if "budget_cap" in changes or "budget_period" in changes:
        _ensure_key_budget(key, owner, session)
        caller = caller_of(key, owner)
        key_budgets.set_key_cap(session, key.id, period_key(caller.budget_period), key.budget_cap)
    return key


def get_key(session: Session, ref: str, tenant: Tenant | None = None) -> ApiKey:
    """A key by id or visible prefix (of ``tenant`` when given)."""
    key = repo.key_by_id_or_prefix(session, ref)
    if key is None or (tenant is not None and key.tenant_id != tenant.id):
        raise NotFoundError(f"API key {ref} not found", field="key")
    return key


def list_keys(session: Session, tenant: Tenant) -> list[ApiKey]:
    return repo.keys_of(session, tenant.id)


def revoke_key(session: Session, ref: str, tenant: Tenant | None = None) -> ApiKey:
    """Revoke by id or visible prefix; revoking twice keeps the first revocation time."""
    key = get_key(session, ref, tenant)
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        session.flush()
    return key


def authenticate(
    session: Session, secret: str, *, touch_every: timedelta = timedelta(minutes=1)
) -> Tenant:
    """The tenant a presented key belongs to (:func:`authenticate_key`)."""
    return authenticate_key(session, secret, touch_every=touch_every).tenant


def authenticate_key(
    session: Session, secret: str, *, touch_every: timedelta = timedelta(minutes=1)
) -> Caller:
    """The key presented and its tenant; one message for every failure, so a caller cannot
    tell a revoked key from a never-issued one. An expired key is told so
    (:class:`KeyExpired`): it was issued with its end known to its holder.

    One read; the key's ``last_used_at`` is written only when older than ``touch_every``, so
    authentication is not a write per request.
    """
    failed = AuthenticationFailed(
        "missing, invalid or revoked API key: send 'Authorization: Bearer <key>'"
    )
    if not well_formed(secret):
        raise failed
    found = repo.key_with_tenant(session, hash_key(secret))
    if found is None:
        raise failed
    key, tenant = found
    if key.revoked_at is not None or not tenant.active:
        raise failed
    now = datetime.now(UTC)
    caller = caller_of(key, tenant)
    if caller.expires_at is not None and caller.expired(now):
        raise KeyExpired(caller.expires_at)
    if key.last_used_at is None or key.last_used_at < now - touch_every:
        repo.touch_key(session, key.id, now, touch_every)
    return caller


def well_formed(secret: str) -> bool:
    """Whether ``secret`` can be a key at all (checked before any lookup)."""
    return secret.startswith(f"{KEY_SCHEME}_") and len(secret) <= 128 and secret.isascii()
