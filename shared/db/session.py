"""Engines and sessions: one unit of work per request or task.

``unit_of_work`` opens one session, commits once at the end and rolls back on error; nothing
deeper calls ``commit()``. Callers publish messages only after it has returned. Why:
docs/architecture.md, 'Units of work'.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from shared.settings import get_common_settings


def get_engine(url: str | None = None) -> Engine:
    """The process's engine for ``url`` (default: the configured database). One per database
    however it is named: ``get_engine()`` and ``get_engine(None)`` share one pool."""
    return _engine(url or get_common_settings().database_url)


@lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    settings = get_common_settings()
    engine = create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        connect_args={"connect_timeout": settings.db_connect_timeout_s},
    )
    ping_when_idle(engine, settings.db_ping_idle_s)
    # A forked child (a prefork pool's process) opens its own connections: the parent's, which
    # it inherited, stay the parent's (SQLAlchemy's recipe for multiprocessing).
    os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
    return engine


_RETURNED_AT = "tandem.returned_at"  # connection record info key: when it went back to the pool


def ping_when_idle(engine: Engine, idle_s: float) -> None:
    """Ping a pooled connection on checkout only when it has sat idle ``idle_s`` or longer.

    A ping on every checkout (``pool_pre_ping``) is a round trip per checkout, two per step,
    about 5% of a job's CPU (measured paired in one process). A connection in steady use is
    alive, or it died with a restarted server moments ago: its statement then fails,
    SQLAlchemy invalidates the whole pool, and the step is retried (``shared.jobs.runner``)
    or the request answers 503.
    One idle longer may have been dropped quietly (an idle timeout, a proxy, a failover), and
    is replaced before anything runs on it.
    """

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi: Any, record: ConnectionPoolEntry) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi: Any, record: ConnectionPoolEntry, _: PoolProxiedConnection) -> None:
        returned = record.info.get(_RETURNED_AT)
        if returned is None or time.monotonic() - returned < idle_s:
            return  # new, or in recent use
        try:
            engine.dialect.do_ping(dbapi)
        except engine.dialect.loaded_dbapi.Error as error:
            raise DisconnectionError(f"pooled connection dead after idling: {error}") from error


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    return _session_factory(get_engine(url))


@lru_cache(maxsize=8)
def _session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def unit_of_work(url: str | None = None) -> Iterator[Session]:
    session = session_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
