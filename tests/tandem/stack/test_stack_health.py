"""What ``tandem stack`` takes for alive and healthy: a zombie or a reused pid is not the
process it started, and a busy worker with a backlog is healthy, as ``/readyz`` says."""

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
from celery import Celery

from services.accounting.service import settle_job
from shared.celery_base import producer_app, send
from shared.db.session import unit_of_work
from shared.settings import WorkerSettings
from shared.tasks import Queue
from shared.webhooks import outbox
from tandem.commands.health import check_queue
from tandem.commands.workers import Service
from tandem.stack.health import probe_worker
from tandem.stack.processes import alive, pid_alive, start_time
from tests.conftest import WorkerPool, start_workers, stop_workers
from tests.shared.webhooks.conftest import settling_job

# A Redis database of this module's own (see tests/conftest.py): no other test's worker may
# drain the backlog this module builds.
OWN_DB = 13


def test_a_zombie_is_not_alive() -> None:
    # The zombie's parent is another process that never reaps it (as under an init that does
    # not reap), so this process cannot reap it either.
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys, time\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    os._exit(0)\n"
            "print(pid, flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        zombie = int(parent.stdout.readline())
        deadline = time.monotonic() + 10
        while Path(f"/proc/{zombie}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert not pid_alive(zombie)
        assert pid_alive(parent.pid)
    finally:
        parent.kill()
        parent.wait()


def test_a_reused_pid_is_not_the_recorded_process() -> None:
    me = os.getpid()
    started = start_time(me)
    assert started is not None
    assert alive({"pid": me, "started": started})
    assert not alive({"pid": me, "started": started - 1})


@pytest.fixture(scope="module")
def own_redis_url(redis_url: str) -> str:
    url = redis_url.rsplit("/", 1)[0] + f"/{OWN_DB}"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture(scope="module")
def app(own_redis_url: str) -> Iterator[Celery]:
    producer = producer_app(WorkerSettings(redis_url=own_redis_url))
    yield producer
    producer.close()


@pytest.fixture(scope="module")
def webhooks_worker(
    own_redis_url: str, database_url: str, artifacts_dir: Path, app: Celery
) -> Iterator[WorkerPool]:
    env = {
        "TANDEM_REDIS_URL": own_redis_url,
        "TANDEM_EGRESS_ALLOW_HOSTS": json.dumps(["127.0.0.1"]),
        "TANDEM_WEBHOOK_TIMEOUT_S": "20",
    }
    pool = start_workers(["webhooks"], artifacts_dir / "logs" / "stack-health", env)
    try:
        deadline = time.monotonic() + 90
        while not probe_worker(app, Queue.WEBHOOKS, 2.0)[0]:
            assert time.monotonic() < deadline, "worker did not come up"
        yield pool
    finally:
        stop_workers(pool)


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A receiver that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"


@pytest.mark.e2e
def test_a_busy_worker_behind_a_backlog_is_healthy(
    webhooks_worker: WorkerPool, app: Celery, silent_url: str
) -> None:
    # The worker's one process waits on a receiver that never answers; more wait behind it.
    jobs = [settling_job(silent_url)[0] for _ in range(3)]
    for job_id in jobs:
        for task in settle_job(job_id):
            send(app, task.name, task.kwargs)

    def busy() -> bool:
        with unit_of_work() as session:
            return outbox.state_of(session, jobs[0]) == ("pending", 1)

    deadline = time.monotonic() + 30
    while not busy():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # A health task would queue behind the backlog: that check calls the worker down ...
    with pytest.raises(Exception):  # noqa: B017 - celery raises its own TimeoutError
        check_queue(app, Service.WEBHOOKS, 2.0)
    # ... while the control channel answers at once, as /readyz does.
    started = time.monotonic()
    healthy, detail = probe_worker(app, Queue.WEBHOOKS, 5.0)
    assert healthy, detail
    assert time.monotonic() - started < 5.0
