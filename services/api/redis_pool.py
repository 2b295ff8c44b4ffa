"""The API process's Redis connections: a bounded pool that a request waits on.

An unbounded pool opens one connection per concurrent request, so a burst of a few hundred
submissions opens a few hundred connections at once, each under the connect timeout, on an
event loop that is busy with the burst itself: on a loaded machine some connects time out and
those requests answer 503 although Redis is up. A bounded pool opens at most
``redis_pool_size`` connections and makes the rest of the burst wait for a free one (Redis
commands on the request path take well under a millisecond). A Redis that is down still
answers at once: its port refuses the connection, which no timeout waits for.
"""

from __future__ import annotations

from typing import Any

from services.api.settings import ApiSettings


def pool_options(settings: ApiSettings) -> dict[str, Any]:
    """Keyword arguments of ``BlockingConnectionPool.from_url`` (sync or asyncio) for the API."""
    return {
        "max_connections": settings.redis_pool_size,
        "timeout": settings.busy_timeout_s,
        "socket_connect_timeout": max(settings.dependency_timeout_s, 2.0),
        "socket_timeout": settings.busy_timeout_s,
    }
