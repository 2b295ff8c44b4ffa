"""Fixtures that bring up (or reuse) real Postgres and Redis, and real Celery workers.

Tests talk to the same kind of servers the stack runs: Debian's Postgres and Redis started by
``tandem.stack`` on loopback. The test database is recreated and migrated with ``alembic
upgrade head`` once per session; DB unit tests each run inside a transaction that is rolled back
(SQLAlchemy's "joining a session into an external transaction").
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from sqlalchemy import Connection, create_engine
from sqlalchemy.orm import Session

from tandem.stack.binaries import find_binaries
from tandem.stack.infra import (
    InfraConfig,
    drop_database,
    ensure_database,
    start_postgres,
    start_redis,
)
from tandem.stack.settings import StackSettings

ROOT = Path(__file__).resolve().parents[1]
# Per session by default, so that two test sessions on one machine (a developer's and a
# pre-commit run, say) never recreate each other's database or flush each other's queues. The
# stack itself uses Redis db 0 and some test modules keep a db of their own (11: the API tests'
# unconsumed submissions, 12: worker-health), so the shared test db is one of 1..10: were it one
# of theirs, its workers would drain their leftover tasks.
TEST_DATABASE = os.environ.get("TANDEM_TEST_DATABASE", f"tandem_test_{os.getpid()}")
_OWN_DATABASE = "TANDEM_TEST_DATABASE" not in os.environ  # a named one is kept for inspection
TEST_REDIS_DB = int(os.environ.get("TANDEM_TEST_REDIS_DB", str(1 + os.getpid() % 10)))

INFRA = InfraConfig.from_settings(StackSettings(), base=ROOT)
DATABASE_URL = INFRA.database_url(TEST_DATABASE)
REDIS_URL = INFRA.redis_url(TEST_REDIS_DB)

# Every process started by the tests (and settings read in this one) sees the test servers.
os.environ.update(
    {
        "TANDEM_ENVIRONMENT": "test",
        "TANDEM_DATABASE_URL": DATABASE_URL,
        "TANDEM_REDIS_URL": REDIS_URL,
        "TANDEM_LOG_JSON": "false",
        # No shadow runs unless a test asks for them: they would add jobs at random.
        "TANDEM_SHADOW_FRACTION": "0",
    }
)


@pytest.fixture(scope="session")
def infra() -> InfraConfig:
    binaries = find_binaries()
    start_postgres(INFRA, binaries)
    start_redis(INFRA, binaries)
    return INFRA


@pytest.fixture(scope="session")
def database_url(infra: InfraConfig) -> str:
    from alembic import command

    from tandem.commands.db import alembic_config

    ensure_database(infra, TEST_DATABASE, recreate=True)
    command.upgrade(alembic_config(DATABASE_URL), "head")
    return DATABASE_URL


@pytest.fixture(scope="session")
def redis_url(infra: InfraConfig) -> str:
    redis.Redis.from_url(REDIS_URL).flushdb()
    return REDIS_URL


@pytest.fixture(scope="session")
def db_connection(database_url: str) -> Iterator[Connection]:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        yield connection
    engine.dispose()


@pytest.fixture
def db_session(db_connection: Connection) -> Iterator[Session]:
    """A session whose work is rolled back after the test, even if the code commits."""
    transaction = db_connection.begin()
    session = Session(bind=db_connection, join_transaction_mode="create_savepoint")
    try:
        yield session
    finally:
        session.close()
        transaction.rollback()


@dataclass
class WorkerPool:
    processes: dict[str, subprocess.Popen[bytes]]
    logs: Path

    def kill(self, service: str) -> None:
        process = self.processes[service]
        process.kill()
        process.wait()


def start_workers(
    services: list[str], logs: Path, extra_env: dict[str, str] | None = None
) -> WorkerPool:
    """Start real ``tandem worker`` processes (the deployed entry point) for ``services``."""
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **(extra_env or {})}
    processes = {}
    for service in services:
        log = (logs / f"worker-{service}.log").open("wb")
        processes[service] = subprocess.Popen(
            [sys.executable, "-m", "tandem", "worker", service, "--concurrency", "1"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    return WorkerPool(processes, logs)


def wait_for_workers(services: list[str], timeout_s: float = 60.0) -> None:
    from shared.celery_base import producer_app
    from shared.tasks import HEALTH_TASKS, Queue

    app = producer_app()
    deadline = time.monotonic() + timeout_s
    try:
        for service in services:
            queue = Queue(service)
            while True:
                result = app.send_task(HEALTH_TASKS[queue].value, queue=queue.value, expires=10)
                try:
                    result.get(timeout=5)
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
    finally:
        app.close()


def stop_workers(pool: WorkerPool) -> None:
    for process in pool.processes.values():
        if process.poll() is None:
            process.terminate()
    for process in pool.processes.values():
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = ROOT / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Drop this session's database; a run in which nothing passed is not a green run."""
    if _OWN_DATABASE and (INFRA.pg_data / "postmaster.pid").exists():
        drop_database(INFRA, TEST_DATABASE)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if exitstatus == 0 and reporter is not None and not reporter.stats.get("passed"):
        session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED
