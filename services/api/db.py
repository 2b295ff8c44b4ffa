"""The API's database sessions: one unit of work per request, sized for admission's floor.

Unlike the workers' engine (:mod:`shared.db.session`) the API's pool does not ping a
connection before each checkout: that ping is a statement and a transaction of its own on
every request. A connection that died with its server is found by the statement that uses
it; SQLAlchemy then invalidates the whole pool, that one request answers 503 and the next
ones reconnect. A short connect timeout keeps a request from hanging while Postgres is down.

Admission's statement runs on the event loop instead (:class:`AsyncDatabase`, asyncpg): no
thread-pool hop, no ORM, a statement prepared once per connection. Everything else keeps the
plain SQLAlchemy session in a worker thread.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import lru_cache
from typing import Any

import asyncpg
from sqlalchemy import Engine, create_engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from services.api.settings import ApiSettings


@lru_cache(maxsize=8)
def _engine(url: str, pool_size: int, connect_timeout_s: int) -> Engine:
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        connect_args={"connect_timeout": connect_timeout_s},
    )


def engine(settings: ApiSettings) -> Engine:
    # libpq's connect_timeout is whole seconds, and at least 2.
    timeout = max(2, round(settings.dependency_timeout_s))
    return _engine(settings.database_url, settings.db_pool_size, timeout)


@lru_cache(maxsize=8)
def _sessions(bound: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=bound, expire_on_commit=False)


@contextmanager
def unit_of_work(settings: ApiSettings) -> Iterator[Session]:
    """One session, committed once at the end, rolled back on error."""
    with _sessions(engine(settings)).begin() as session:
        yield session


@contextmanager
def autocommit(settings: ApiSettings) -> Iterator[Session]:
    """A session each of whose statements commits by itself, for a unit of work that is ONE
    statement: no BEGIN or COMMIT round trip, and the row locks the statement takes are
    released inside the server the moment it ends, not after the client's next round trip."""
    with engine(settings).connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        with Session(bind=connection, expire_on_commit=False) as session:
            yield session


async def _session_kept(connection: Any) -> None:
    """Nothing to reset when a connection goes back to the pool: the request path sets no
    session state (an open transaction is still rolled back by asyncpg). Its default reset is
    a statement of four commands per checkout."""


class AsyncDatabase:
    """asyncpg pools for the statements on the request path: one per event loop (a pool belongs
    to the loop it was opened in), opened on first use and closed with the app."""

    def __init__(self, dsn: str, size: int, timeout_s: float) -> None:
        self._dsn = dsn
        self._size = size
        # Connecting, waiting for a pooled connection and for a statement alike: a connection
        # is opened on the event loop in the middle of the burst that needs it, so a short
        # connect timeout fails requests of a busy API whose database is up.
        self._timeout_s = timeout_s
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncpg.Pool] = (
            weakref.WeakKeyDictionary()
        )
        self._opening: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    async def _open(self, loop: asyncio.AbstractEventLoop) -> asyncpg.Pool:
        async with self._opening.setdefault(loop, asyncio.Lock()):
            pool = self._pools.get(loop)
            if pool is None:
                pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=1,
                    max_size=self._size,
                    timeout=self._timeout_s,
                    command_timeout=self._timeout_s,
                    reset=_session_kept,
                )
                self._pools[loop] = pool
        return pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop) or await self._open(loop)
        async with pool.acquire(timeout=self._timeout_s) as connection:
            yield connection

    async def close(self) -> None:
        """Close the running loop's pool (the app's shutdown)."""
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.close()


def asyncpg_dsn(url: str) -> str:
    """The SQLAlchemy database URL (``postgresql+psycopg://…``) as asyncpg takes it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@lru_cache(maxsize=8)
def _async_database(url: str, pool_size: int, timeout_s: float) -> AsyncDatabase:
    return AsyncDatabase(asyncpg_dsn(url), pool_size, timeout_s)


def async_database(settings: ApiSettings) -> AsyncDatabase:
    return _async_database(settings.database_url, settings.db_pool_size, settings.busy_timeout_s)
