"""Per-tenant requests-per-minute limit, shared by every API replica through Redis.

A fixed one-minute window per tenant: one INCR (+ EXPIRE on the first hit) per request. The
concurrent-jobs limit is not here: it is counted in Postgres under the budget row lock at
admission, where it cannot race and needs no cleanup when a job ends.
"""

from __future__ import annotations

import time
import uuid

import redis

from services.api.errors import RateLimited
from shared.errors import TransientError

WINDOW_S = 60


def check_rate(client: redis.Redis, tenant_id: uuid.UUID, rpm: int | None) -> None:
    if rpm is None:
        return
    now = time.time()
    window = int(now // WINDOW_S)
    key = f"tandem:rpm:{tenant_id}:{window}"
    try:
        pipe = client.pipeline()
        pipe.incr(key)
        pipe.expire(key, WINDOW_S * 2, nx=True)
        count = int(pipe.execute()[0])
    except redis.RedisError as exc:
        raise TransientError("rate limiter unavailable; retry shortly") from exc
    if count > rpm:
        retry_after = max(1, int((window + 1) * WINDOW_S - now + 0.999))
        raise RateLimited(
            f"more than {rpm} requests this minute; retry in {retry_after} s",
            retry_after_s=retry_after,
            limit="requests_per_minute",
        )
