"""Request limits kept in Redis, shared by every API replica: per-tenant (and per-key, where a
key has its own) requests per minute, and failed authentications per client address.

A fixed one-minute window per subject, named by its minute: an ``INCRBY``, and an ``EXPIRE``
only by the call that opened the window (the count it got back is its own increment). Should that
``EXPIRE`` never be sent (the process died in between), the count is still right, being per
named minute; the key merely outlives its window.

A tenant's requests are not counted one round trip each: an API process takes a lease of
several of the minute's requests at once (:class:`RequestLimiter`: one ``INCRBY`` of the lease
size, about one in ``rpm / 100`` and at most ``MAX_LEASE`` requests) and admits that many before
asking Redis again. Leases are numbered out of the shared count, so no minute ever admits more
than ``rpm`` requests over all replicas; near the limit a replica may hold a few unused ones
(at most ``MAX_LEASE - 1`` each), which only makes the limit slightly stricter. Below 200
requests per minute a lease is a single request: the count is exact.
Both run on the event loop (``redis.asyncio``): no thread-pool hop. The concurrent-jobs limit
is not here: it is counted in Postgres under the budget row lock at admission, where it cannot
race and needs no cleanup when a job ends.
"""

from __future__ import annotations

import time

import redis
import redis.asyncio as aioredis

from services.api.errors import RateLimited
from shared.errors import TransientError

WINDOW_S = 60


def _window_key(kind: str, subject: str) -> tuple[str, int]:
    now = time.time()
    window = int(now // WINDOW_S)
    retry_after = max(1, int((window + 1) * WINDOW_S - now + 0.999))
    return f"tandem:{kind}:{subject}:{window}", retry_after


MAX_LEASE = 20
MAX_LEASES_HELD = 10_000  # tenants with a lease in one process before stale ones are dropped


async def _count(client: aioredis.Redis[bytes], key: str, amount: int = 1) -> int:
    try:
        count = int(await client.incrby(key, amount))
        if count == amount:
            await client.expire(key, WINDOW_S * 2)
    except redis.RedisError as exc:
        raise TransientError("rate limiter unavailable; retry shortly") from exc
    return count


class RequestLimiter:
    """Per-tenant requests per minute, counted in Redis by leases (see the module's text)."""

    def __init__(self, client: aioredis.Redis[bytes]) -> None:
        self._client = client
        self._leases: dict[str, tuple[str, int]] = {}  # tenant -> (window key, requests left)

    async def count(self, subject: str, rpm: int, *, limit: str = "requests_per_minute") -> None:
        """Count one request of ``subject`` (a tenant's id, or ``key:<id>`` for a key's own
        limit); refuse it when over ``rpm`` this minute, naming ``limit``."""
        key, retry_after = _window_key("rpm", subject)
        window, left = self._leases.get(subject, ("", 0))
        if window == key and left > 0:
            self._leases[subject] = (key, left - 1)
            return
        lease = max(1, min(MAX_LEASE, rpm // 100))
        last = await _count(self._client, key, lease)
        granted = min(last, rpm) - (last - lease)  # this lease's numbers that are <= rpm
        if granted <= 0:
            raise RateLimited(
                f"more than {rpm} requests this minute; retry in {retry_after} s",
                retry_after_s=retry_after,
                limit=limit,
            )
        if len(self._leases) >= MAX_LEASES_HELD:
            self._leases.clear()
        self._leases[subject] = (key, granted - 1)


async def check_auth_failures(client: aioredis.Redis[bytes], address: str, allowed: int) -> None:
    """Refuse a client that failed authentication too often this minute, before its key is
    looked up: guessing keys cannot drive Postgres at full speed."""
    key, retry_after = _window_key("authfail", address)
    try:
        failures = await client.get(key)
    except redis.RedisError as exc:
        raise TransientError("rate limiter unavailable; retry shortly") from exc
    if failures is not None and int(failures) >= allowed:
        raise RateLimited(
            f"too many failed authentications from this address; retry in {retry_after} s",
            retry_after_s=retry_after,
            limit="failed_authentications",
        )


async def count_auth_failure(client: aioredis.Redis[bytes], address: str) -> None:
    key, _ = _window_key("authfail", address)
    await _count(client, key)
