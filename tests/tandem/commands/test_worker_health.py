"""``tandem worker-health``, the containers' worker probe, against real Redis and a real worker."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import WorkerPool, start_workers, stop_workers

RUNNING = "coordinator"
# A Redis database of this module's own: workers that other tests (or a local stack) run on the
# shared test database would answer for the services this module expects to find silent.
OWN_DB = 12


@pytest.fixture(scope="module")
def own_redis_url(redis_url: str) -> str:
    url = redis_url.rsplit("/", 1)[0] + f"/{OWN_DB}"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture(scope="module")
def worker(own_redis_url: str, database_url: str, artifacts_dir: Path) -> Iterator[WorkerPool]:
    env = {"TANDEM_REDIS_URL": own_redis_url}
    pool = start_workers([RUNNING], artifacts_dir / "logs" / "worker-health", env)
    try:
        deadline = time.monotonic() + 90
        while worker_health(own_redis_url, RUNNING, "--timeout", "5")[0] != 0:
            assert time.monotonic() < deadline, "worker did not come up"
        yield pool
    finally:
        stop_workers(pool)


def worker_health(redis_url: str, *args: str) -> tuple[int, dict[str, object]]:
    """Run the real entry point, as a container probe does."""
    done = subprocess.run(
        [sys.executable, "-m", "tandem", "worker-health", *args, "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "TANDEM_REDIS_URL": redis_url},
        timeout=120,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, done.stdout + done.stderr
    return done.returncode, json.loads(lines[-1])


@pytest.mark.e2e
def test_queue_check_gets_the_health_task_answered(worker: WorkerPool, own_redis_url: str) -> None:
    code, outcome = worker_health(own_redis_url, RUNNING, "--timeout", "30")
    assert code == 0, outcome
    assert outcome["check"] == "queue"
    assert outcome["answer"]["service"] == RUNNING  # type: ignore[index]


@pytest.mark.e2e
def test_local_check_pings_this_hosts_worker(worker: WorkerPool, own_redis_url: str) -> None:
    code, outcome = worker_health(own_redis_url, RUNNING, "--local", "--timeout", "10")
    assert code == 0, outcome
    assert outcome["node"] == f"{RUNNING}@{socket.gethostname()}"
    assert outcome["answer"] == {"ok": "pong"}


@pytest.mark.e2e
def test_service_without_a_worker_is_unhealthy(worker: WorkerPool, own_redis_url: str) -> None:
    code, outcome = worker_health(own_redis_url, "accounting", "--timeout", "2")
    assert code == 1
    assert outcome["healthy"] is False
    assert "error" in outcome

    code, outcome = worker_health(own_redis_url, "executor", "--local", "--timeout", "2")
    assert code == 1
    assert outcome["healthy"] is False


@pytest.mark.e2e
def test_killed_worker_fails_its_liveness_probe(worker: WorkerPool, own_redis_url: str) -> None:
    worker.kill(RUNNING)
    code, outcome = worker_health(own_redis_url, RUNNING, "--local", "--timeout", "3")
    assert code == 1, outcome
