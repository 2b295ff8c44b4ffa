"""Tenants and API keys against real Postgres (each test rolled back)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.budgets import current_budget, reserve
from shared.db.models import ApiKey
from shared.errors import NotFoundError, ValidationFailed
from shared.tenants import (
    AuthenticationFailed,
    Conflict,
    authenticate,
    create_key,
    create_tenant,
    get_tenant,
    hash_key,
    revoke_key,
    update_tenant,
)


def name() -> str:
    return f"tenant-{uuid.uuid4().hex[:8]}"


def test_key_is_shown_once_and_stored_hashed(db_session: Session) -> None:
    tenant = create_tenant(db_session, name())
    issued = create_key(db_session, tenant, "ci")
    assert issued.secret.startswith(issued.key.prefix + "_")
    assert len(issued.secret) > 40
    stored = db_session.execute(select(ApiKey).where(ApiKey.id == issued.key.id)).scalar_one()
    assert stored.key_hash == hash_key(issued.secret)
    assert issued.secret not in (stored.key_hash, stored.prefix, stored.name)
    assert authenticate(db_session, issued.secret).id == tenant.id


def test_revoked_unknown_and_malformed_keys_fail_alike(db_session: Session) -> None:
    tenant = create_tenant(db_session, name())
    issued = create_key(db_session, tenant)
    revoke_key(db_session, issued.key.prefix)
    for secret in (issued.secret, issued.secret[:-1] + "x", "nonsense", "tdm_" + "a" * 200):
        with pytest.raises(AuthenticationFailed) as failed:
            authenticate(db_session, secret)
        assert failed.value.http_status == 401
        assert "missing, invalid or revoked" in failed.value.message


def test_inactive_tenant_cannot_authenticate(db_session: Session) -> None:
    tenant = create_tenant(db_session, name())
    issued = create_key(db_session, tenant)
    update_tenant(db_session, tenant, active=False)
    with pytest.raises(AuthenticationFailed):
        authenticate(db_session, issued.secret)


def test_duplicate_name_conflicts(db_session: Session) -> None:
    first = name()
    create_tenant(db_session, first)
    with pytest.raises(Conflict):
        create_tenant(db_session, first)


def test_limits_are_validated(db_session: Session) -> None:
    with pytest.raises(ValidationFailed):
        create_tenant(db_session, name(), budget_cap=Decimal(-1))
    with pytest.raises(ValidationFailed):
        create_tenant(db_session, name(), soft_alert_ratio=Decimal("1.5"))
    with pytest.raises(ValidationFailed):
        create_tenant(db_session, " ")


def test_lookup_by_id_or_name(db_session: Session) -> None:
    tenant = create_tenant(db_session, name())
    assert get_tenant(db_session, tenant.id) is tenant
    assert get_tenant(db_session, tenant.name) is tenant
    with pytest.raises(NotFoundError):
        get_tenant(db_session, "no-such-tenant")
    with pytest.raises(NotFoundError):
        revoke_key(db_session, "tdm_00000000")


def test_new_cap_applies_to_the_current_period(db_session: Session) -> None:
    tenant = create_tenant(db_session, name(), budget_cap=Decimal("0.1"))
    reserve(db_session, tenant, Decimal("0.1"))
    update_tenant(db_session, tenant, budget_cap=Decimal("5"))
    assert current_budget(db_session, tenant).cap == Decimal(5)
    reserve(db_session, tenant, Decimal("4.9"))
