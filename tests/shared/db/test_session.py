"""One engine, so one connection pool, per database in a process, however it is asked for: a
step's read (``get_engine()``) and its record (``unit_of_work()``) once held a pool each. A
pooled connection is pinged only after idling; a busy one that died is found by its statement."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from shared.db.session import get_engine, ping_when_idle, session_factory, unit_of_work
from shared.jobs import repository as repo
from shared.settings import get_common_settings

pytestmark = pytest.mark.usefixtures("database_url")


def test_the_default_database_has_one_engine_however_it_is_named() -> None:
    configured = get_common_settings().database_url
    assert get_engine() is get_engine(None) is get_engine(configured)
    assert session_factory().kw["bind"] is get_engine()
    assert session_factory(configured) is session_factory(None)


def test_a_read_outside_a_transaction_and_a_unit_of_work_share_one_pool() -> None:
    with repo.outside_transaction() as session:
        read = session.connection().engine
    with unit_of_work() as session:
        record = session.connection().engine
    assert read is record is get_engine()


# -- a pooled connection that died: pinged when it idled, else found by its statement --------


def _pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(pid: int) -> None:
    with get_engine().connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        connection.commit()


@pytest.fixture
def one_connection_engine(database_url: str) -> Iterator[Callable[[float], Engine]]:
    made: list[Engine] = []

    def make(idle_s: float) -> Engine:
        engine = create_engine(database_url, pool_size=1, max_overflow=0)
        ping_when_idle(engine, idle_s)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.dispose()


def test_a_connection_that_idled_is_pinged_and_replaced_when_dead(
    one_connection_engine: Callable[[float], Engine],
) -> None:
    engine = one_connection_engine(0.0)  # every reuse counts as idle: always pinged
    first = _pid(engine)
    _terminate(first)
    assert _pid(engine) != first  # the dead one was replaced before the statement ran


def test_a_busy_connection_is_not_pinged_its_statement_finds_it_dead_and_the_pool_recovers(
    one_connection_engine: Callable[[float], Engine],
) -> None:
    engine = one_connection_engine(3600.0)
    first = _pid(engine)
    _terminate(first)
    with pytest.raises(OperationalError):  # not pinged: its statement fails (a step retries)
        _pid(engine)
    assert _pid(engine) != first  # the whole pool was invalidated: a fresh connection


# -- a server that never answers ------------------------------------------------------------


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose TCP connections are accepted (by the kernel) and never answered: a hung
    server, or one behind a proxy whose far side is gone."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as listener:
        yield int(listener.getsockname()[1])


def test_a_new_connection_to_a_server_that_never_answers_fails_within_the_timeout(
    silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a connect timeout libpq waits for the server's first word forever, holding the
    step's thread (or a worker's consumer, which records expired messages) with it."""
    monkeypatch.setenv("TANDEM_DB_CONNECT_TIMEOUT_S", "2")
    get_common_settings.cache_clear()
    outcome: list[BaseException | None] = []

    def connect() -> None:
        engine = get_engine(f"postgresql+psycopg://tandem@127.0.0.1:{silent_port}/tandem")
        try:
            engine.connect().close()
            outcome.append(None)
        except BaseException as error:  # what it raised is the assertion
            outcome.append(error)
        finally:
            engine.dispose()

    try:
        started = time.monotonic()
        waiter = threading.Thread(target=connect, daemon=True)  # a hang must not hang the suite
        waiter.start()
        waiter.join(timeout=20)
        assert outcome, "still waiting for the server after 20 s"
        assert isinstance(outcome[0], OperationalError)
        assert time.monotonic() - started < 10
    finally:
        get_common_settings.cache_clear()  # the next reader sees the restored environment
