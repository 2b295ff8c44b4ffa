"""The API-key cache: a busy key is not looked up per request, and a key revoked or a tenant
changed OUTSIDE this API process (the CLI, another replica) takes effect within one check
interval, through the one statement that re-checks every cached key."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
import redis
from sqlalchemy import select, update

from services.api.app import create_app
from services.api.keycache import KeyCache
from services.api.settings import ApiSettings
from shared.db.models import ApiKey, Tenant
from shared.db.session import unit_of_work
from shared.tenants import Caller, create_key, create_tenant, hash_key, revoke_key
from tests.services.api.conftest import ServerThread

OWN_REDIS_DB = 14
CHECK_S = 0.5


def _tenant_with_key(rpm: int | None = None) -> tuple[Tenant, str, uuid.UUID]:
    with unit_of_work() as session:
        tenant = create_tenant(
            session, f"kc-{uuid.uuid4().hex[:8]}", budget_cap=Decimal(1), rate_limit_rpm=rpm
        )
        issued = create_key(session, tenant, "t")
        session.flush()
        session.refresh(tenant)
        return tenant, issued.secret, issued.key.id


def _caller(tenant: Tenant, key_id: uuid.UUID) -> Caller:
    return Caller(tenant, key_id, None, tenant.budget_period, None, None)


def test_a_check_drops_revoked_keys_refreshes_tenants_and_records_use(
    api_settings: ApiSettings,
) -> None:
    settings = api_settings.model_copy(update={"key_touch_interval_s": 0})
    cache = KeyCache(CHECK_S)
    kept, kept_secret, kept_id = _tenant_with_key()
    gone, gone_secret, gone_id = _tenant_with_key()
    cache.put(hash_key(kept_secret), _caller(kept, kept_id))
    cache.put(hash_key(gone_secret), _caller(gone, gone_id))
    with unit_of_work() as session:
        revoke_key(session, str(gone_id))
        session.execute(update(Tenant).where(Tenant.id == kept.id).values(rate_limit_rpm=7))
    assert cache.get(hash_key(kept_secret)) is not None  # used since it was put
    cache.check(settings)
    assert cache.get(hash_key(gone_secret)) is None
    refreshed = cache.get(hash_key(kept_secret))
    assert refreshed is not None and refreshed.tenant.rate_limit_rpm == 7
    with unit_of_work() as session:
        used = session.scalar(select(ApiKey.last_used_at).where(ApiKey.id == kept_id))
        unused = session.scalar(select(ApiKey.last_used_at).where(ApiKey.id == gone_id))
    assert used is not None and unused is None


def test_an_entry_not_rechecked_is_not_trusted() -> None:
    cache = KeyCache(0.05)
    caller = _caller(Tenant(id=uuid.uuid4(), name="t", budget_period="monthly"), uuid.uuid4())
    cache.put("h", caller)
    assert cache.get("h") is caller
    time.sleep(0.15)  # two intervals without a check (Postgres unreachable, say)
    assert cache.get("h") is None


@pytest.fixture
def checked_server(database_url: str, redis_url: str) -> Iterator[ServerThread]:
    own = f"{redis_url.rsplit('/', 1)[0]}/{OWN_REDIS_DB}"
    redis.Redis.from_url(own).flushdb()
    settings = ApiSettings(database_url=database_url, redis_url=own, auth_cache_s=CHECK_S)
    with ServerThread(create_app(settings)) as running:
        yield running
    redis.Redis.from_url(own).flushdb()


def test_a_key_revoked_elsewhere_stops_working_within_the_check_interval(
    checked_server: ServerThread,
) -> None:
    _, secret, key_id = _tenant_with_key()
    with httpx.Client(
        base_url=checked_server.url, headers={"Authorization": f"Bearer {secret}"}, timeout=10
    ) as client:
        for _ in range(5):  # kept across several checks while in use
            assert client.get("/v1/jobs").status_code == 200
            time.sleep(CHECK_S / 2)
        with unit_of_work() as session:  # as `tandem keys revoke` does: not through this API
            revoke_key(session, str(key_id))
        revoked_at = time.monotonic()
        while client.get("/v1/jobs").status_code != 401:
            assert time.monotonic() - revoked_at < 2 * CHECK_S + 1, "a revoked key kept working"
            time.sleep(0.05)


def test_a_check_refreshes_a_keys_own_limits_and_expiry(api_settings: ApiSettings) -> None:
    """An expiry or rate set elsewhere (another replica, the CLI) reaches a cached key at the
    next check; an expired key stays cached, to be refused without a lookup."""
    cache = KeyCache(CHECK_S)
    tenant, secret, key_id = _tenant_with_key()
    cache.put(hash_key(secret), _caller(tenant, key_id))
    past = datetime.now(UTC) - timedelta(seconds=1)
    with unit_of_work() as session:
        session.execute(
            update(ApiKey).where(ApiKey.id == key_id).values(expires_at=past, rate_limit_rpm=9)
        )
    cache.check(api_settings)
    refreshed = cache.get(hash_key(secret))
    assert refreshed is not None and refreshed.rate_limit_rpm == 9
    assert refreshed.expired(datetime.now(UTC))
