"""Engines and sessions: one unit of work per request or task.

``unit_of_work`` opens one session, commits once at the end and rolls back on error; nothing
deeper calls ``commit()``. Callers publish messages only after it has returned. Why:
docs/architecture.md, 'Units of work'.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from shared.settings import get_common_settings


def get_engine(url: str | None = None) -> Engine:
    """The process's engine for ``url`` (default: the configured database). One per database
    however it is named: ``get_engine()`` and ``get_engine(None)`` share one pool."""
    return _engine(url or get_common_settings().database_url)


@lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    settings = get_common_settings()
    return create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=True,
    )


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
