"""Concurrent HTTP load for the benchmarks: many clients on keep-alive connections.

The clients are aiohttp's, whose HTTP parser is compiled. A pure-Python client (httpx) spends
several times the server's CPU on each request; on a machine of few cores it then becomes what
is measured: the server waits on it, each request reaches an idle process alone, and a limit
that only shows under load (a lock every request of one tenant takes) never shows. The
benchmarks print the load generator's own CPU per request beside the server's.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass
class Load:
    """What a run of requests got back."""

    wall_s: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    # Requests whose connection failed (status 0 in ``statuses``), by error.
    errors: Counter[str] = field(default_factory=Counter)
    # The JSON bodies of the answers, when collected.
    answers: list[Any] = field(default_factory=list)


async def _hammer(
    url: str,
    method: str,
    path: str,
    *,
    n: int,
    clients: int,
    keys: Sequence[str | None],
    bodies: Sequence[object],
    collect: bool,
) -> Load:
    load = Load()
    sent = [0]
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as session:

        async def client(i: int) -> None:
            key = keys[i % len(keys)]
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            while sent[0] < n:
                body = bodies[sent[0] % len(bodies)]
                sent[0] += 1
                try:
                    async with session.request(method, path, json=body, headers=headers) as got:
                        answer = await got.read()
                        status = got.status
                except (aiohttp.ClientError, TimeoutError) as error:
                    status = 0  # the connection failed: counted, not fatal
                    load.errors[f"{type(error).__name__}: {error}"[:160]] += 1
                else:
                    if collect:
                        load.answers.append(json.loads(answer))
                load.statuses[status] += 1

        started = time.perf_counter()
        await asyncio.gather(*(client(i) for i in range(clients)))
        load.wall_s = time.perf_counter() - started
    return load


def hammer(
    url: str,
    method: str,
    path: str,
    *,
    n: int,
    clients: int,
    keys: Sequence[str | None] = (None,),
    bodies: Sequence[object] = (None,),
    collect: bool = False,
) -> Load:
    """``n`` requests from ``clients`` concurrent clients: client ``i`` authenticates with
    ``keys[i % len(keys)]``, request ``j`` sends ``bodies[j % len(bodies)]`` as JSON."""
    return asyncio.run(
        _hammer(url, method, path, n=n, clients=clients, keys=keys, bodies=bodies, collect=collect)
    )
