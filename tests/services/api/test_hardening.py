"""What a hostile client or a dependency outage can do to the API: bounded, and answered.

Limits that would lock the shared test server out (failed-authentication throttling, a low
default rate limit) run on servers of their own, on a Redis db of their own.
"""

from __future__ import annotations

import asyncio
import select
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from services.api.app import create_app
from services.api.settings import ApiSettings
from tests.services.api.conftest import ServerThread, TenantHandle, free_port
from tests.services.api.jobs.test_jobs import Make, submit

OWN_REDIS_DB = 13


def send_chunked(port: int, total: int, chunk: int = 64 * 1024) -> tuple[bytes, int]:
    """POST a chunked body of up to ``total`` bytes with no key; stop as soon as the server
    answers. Returns (what the server answered, bytes sent)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sent = 0
    answer = b""
    try:
        sock.sendall(
            b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        piece = f"{chunk:x}\r\n".encode() + b"a" * chunk + b"\r\n"
        while sent < total:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(piece)
            except OSError:  # the server closed the connection after answering
                break
            sent += chunk
        sock.settimeout(10)
        while b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    finally:
        sock.close()
    return answer, sent


def test_a_chunked_body_is_cut_off_at_the_limit_before_authentication(
    server: ServerThread, api_settings: ApiSettings
) -> None:
    answer, sent = send_chunked(server.port, 100 * 1024 * 1024)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    # Refused while reading, not after: far less than the 100 MB offered went out.
    assert sent < 8 * api_settings.max_request_bytes


@pytest.fixture
def strict_server(database_url: str, redis_url: str) -> Iterator[ServerThread]:
    own = f"{redis_url.rsplit('/', 1)[0]}/{OWN_REDIS_DB}"
    redis.Redis.from_url(own).flushdb()
    settings = ApiSettings(
        database_url=database_url,
        redis_url=own,
        auth_failures_per_minute=3,
        default_rate_limit_rpm=4,
        auth_cache_s=0,
    )
    with ServerThread(create_app(settings)) as running:
        yield running
    redis.Redis.from_url(own).flushdb()


def test_failed_authentication_is_throttled_before_the_key_lookup(
    strict_server: ServerThread, make_tenant: Make
) -> None:
    valid = make_tenant()  # a real key, never used on this server yet
    with httpx.Client(base_url=strict_server.url, timeout=10) as client:
        for _ in range(3):
            bad = client.get("/v1/jobs", headers={"Authorization": "Bearer tdm_00000000_guess"})
            assert bad.status_code == 401, bad.text
        throttled = client.get("/v1/jobs", headers={"Authorization": "Bearer tdm_0_guess"})
        assert throttled.status_code == 429, throttled.text
        assert throttled.json()["error"]["limit"] == "failed_authentications"
        assert int(throttled.headers["Retry-After"]) >= 1
        # Even a valid key is not looked up from this address until the window ends.
        blocked = client.get("/v1/jobs", headers={"Authorization": f"Bearer {valid.key}"})
        assert blocked.status_code == 429


def test_a_default_rate_limit_applies_to_tenants_without_their_own(
    strict_server: ServerThread, make_tenant: Make
) -> None:
    tenant = make_tenant()
    with httpx.Client(
        base_url=strict_server.url, headers={"Authorization": f"Bearer {tenant.key}"}, timeout=10
    ) as client:
        statuses = [client.get("/v1/jobs").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]


def test_a_revoked_key_stops_working_within_the_cache_lifetime(
    make_tenant: Make, admin: httpx.Client, api_settings: ApiSettings
) -> None:
    tenant = make_tenant()
    assert tenant.client.get("/v1/jobs").status_code == 200  # now cached
    keys = admin.get(f"/v1/admin/tenants/{tenant.id}/keys").json()
    assert admin.post(f"/v1/admin/keys/{keys[0]['id']}/revoke").status_code == 200
    deadline = time.monotonic() + api_settings.auth_cache_s + 1
    while tenant.client.get("/v1/jobs").status_code != 401:
        assert time.monotonic() < deadline, "a revoked key kept working"
        time.sleep(0.2)


def _timed(client: httpx.Client, tenant: TenantHandle) -> tuple[int, float]:
    started = time.monotonic()
    response = client.post(
        "/v1/jobs",
        json={"question": "q", "domain": "math"},
        headers={"Authorization": f"Bearer {tenant.key}"},
    )
    assert response.json()["error"]["code"] == "transient_error", response.text
    return response.status_code, time.monotonic() - started


def test_redis_down_is_a_503_within_a_second(database_url: str, make_tenant: Make) -> None:
    tenant = make_tenant()
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    settings = ApiSettings(database_url=database_url, redis_url=nowhere)
    with (
        ServerThread(create_app(settings)) as down,
        httpx.Client(base_url=down.url, timeout=30) as client,
    ):
        status, took = _timed(client, tenant)
    assert status == 503 and took < 1.0, took


def test_postgres_down_is_a_503_within_a_second(api_redis_url: str, make_tenant: Make) -> None:
    tenant = make_tenant()
    nowhere = f"postgresql+psycopg://tandem@127.0.0.1:{free_port()}/tandem"
    settings = ApiSettings(database_url=nowhere, redis_url=api_redis_url)
    with (
        ServerThread(create_app(settings)) as down,
        httpx.Client(base_url=down.url, timeout=30) as client,
    ):
        status, took = _timed(client, tenant)
    assert status == 503 and took < 1.0, took


def test_submission_still_works_after_the_hostile_requests(make_tenant: Make) -> None:
    assert submit(make_tenant()).status_code == 202


def test_a_burst_waits_for_the_bounded_redis_pool_instead_of_failing(
    database_url: str, redis_url: str, make_tenant: Make
) -> None:
    """Found under load: an unbounded pool opened one Redis connection per concurrent request
    and a few of those connects timed out on a busy machine (503 with Redis up)."""
    own = f"{redis_url.rsplit('/', 1)[0]}/{OWN_REDIS_DB}"
    watcher = redis.Redis.from_url(own)
    watcher.flushdb()
    settings = ApiSettings(database_url=database_url, redis_url=own, redis_pool_size=2)
    tenant = make_tenant()

    async def burst(url: str) -> list[int]:
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {tenant.key}"}, timeout=30
        ) as client:
            answers = await asyncio.gather(
                *(
                    client.post("/v1/jobs", json={"question": f"q{i}", "domain": "math"})
                    for i in range(60)
                )
            )
        return [answer.status_code for answer in answers]

    def on_own_db() -> set[str]:
        return {c["id"] for c in watcher.client_list() if int(c["db"]) == OWN_REDIS_DB}

    try:
        earlier = on_own_db()  # the watcher's, and any left by this module's other servers
        with ServerThread(create_app(settings)) as running:
            statuses = asyncio.run(burst(running.url))
            opened = on_own_db() - earlier
        assert statuses == [202] * 60, sorted(set(statuses))
        assert len(opened) <= settings.redis_pool_size, opened
    finally:
        watcher.flushdb()
