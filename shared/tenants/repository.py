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


def touch_key(session: Session, key_id: uuid.UUID, now: datetime) -> None:
    """Record use at most once a minute, so authentication is not a write per request."""
    session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - timedelta(minutes=1)),
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
