"""All SQL of tenants and API keys."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from shared.db.models import ApiKey, Tenant


def tenant_by_name(session: Session, name: str) -> Tenant | None:
    return session.execute(select(Tenant).where(Tenant.name == name)).scalar_one_or_none()


def all_tenants(session: Session) -> list[Tenant]:
    return list(session.execute(select(Tenant).order_by(Tenant.created_at, Tenant.id)).scalars())


def key_with_tenant(session: Session, key_hash: str) -> tuple[ApiKey, Tenant] | None:
    row = session.execute(
        select(ApiKey, Tenant)
        .join(Tenant, Tenant.id == ApiKey.tenant_id)
        .where(ApiKey.key_hash == key_hash)
    ).one_or_none()
    return None if row is None else (row[0], row[1])


def touch_key(
    session: Session, key_id: uuid.UUID, now: datetime, every: timedelta = timedelta(minutes=1)
) -> None:
    """Record use at most once per ``every``: concurrent requests of one key write once."""
    session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - every),
        )
        .values(last_used_at=now)
    )


def keys_of(session: Session, tenant_id: uuid.UUID) -> list[ApiKey]:
    return list(
        session.execute(
            select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.created_at)
        ).scalars()
    )


def key_by_id_or_prefix(session: Session, ref: str) -> ApiKey | None:
    try:
        key_id = uuid.UUID(ref)
    except ValueError:
        return session.execute(select(ApiKey).where(ApiKey.prefix == ref)).scalar_one_or_none()
    return session.get(ApiKey, key_id)


def valid_keys(session: Session, key_hashes: list[str]) -> dict[str, tuple[ApiKey, Tenant]]:
    """Of ``key_hashes``, those still valid (not revoked, tenant active), with their key and
    tenant as they are now: one statement re-checks every key an API process has cached. An
    expired key is returned too: its caller is told it expired, not that it is unknown."""
    rows = session.execute(
        select(ApiKey, Tenant)
        .join(Tenant, Tenant.id == ApiKey.tenant_id)
        .where(ApiKey.key_hash.in_(key_hashes), ApiKey.revoked_at.is_(None), Tenant.active)
    ).all()
    return {key.key_hash: (key, tenant) for key, tenant in rows}


def touch_keys(session: Session, key_hashes: list[str], now: datetime, every: timedelta) -> None:
    """:func:`touch_key` for several keys at once, by hash."""
    session.execute(
        update(ApiKey)
        .where(
            ApiKey.key_hash.in_(key_hashes),
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - every),
        )
        .values(last_used_at=now)
    )
