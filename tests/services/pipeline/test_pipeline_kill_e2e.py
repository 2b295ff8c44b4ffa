"""End to end with workers of the test's own, on engines of its own: a step past its time
limit in the threads pool, and an executor killed mid-answer.

Apart from the other pipeline tests, whose module-wide workers would consume these tests'
messages from the same queues.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery
from sqlalchemy import select

from shared.celery_base import producer_app
from shared.db.models import Job, JobStatus
from shared.db.session import unit_of_work
from tests.conftest import start_workers, stop_workers, wait_for_workers
from tests.services.pipeline.support import (
    assert_charged_once,
    make_tenant,
    money_of,
    sim_engines,
    steps_of,
    submit,
    use_classifier,
    wait_terminal,
)

pytestmark = pytest.mark.e2e

SERVICES = ["coordinator", "scorer", "executor", "accounting"]
ALWAYS = 0.0  # every level is sufficient: the job goes from level 0's score to its answer
QUESTION = "What is 17 * 3 + 12?"


@pytest.fixture(scope="module")
def app() -> Iterator[Celery]:
    celery = producer_app()
    yield celery
    celery.close()


def test_a_step_past_its_time_limit_fails_as_a_timeout_in_the_threads_pool(
    database_url: str, redis_url: str, app: Celery, artifacts_dir: Path
) -> None:
    """Celery enforces no time limit in a threads pool (the default): the step's engine call is
    cut at the soft limit instead, so a stalled engine fails the job as a timeout, with its
    money released, long before the engine would have answered."""
    use_classifier(ALWAYS)
    logs = artifacts_dir / "pipeline-time-limit"
    with sim_engines(logs, faults="stall=60") as stalled:
        env = {
            **stalled.env(),
            "TANDEM_WORKER_POOL": "threads",
            "TANDEM_TASK_SOFT_TIME_LIMIT_S": "2",
            "TANDEM_TASK_TIME_LIMIT_S": "3",
            "TANDEM_VISIBILITY_TIMEOUT_S": "8",
        }
        pool = start_workers(SERVICES, logs, env)
        try:
            wait_for_workers(SERVICES)
            started = time.monotonic()
            job_id = submit(app, make_tenant(), QUESTION)
            done = wait_terminal(job_id, timeout_s=45)
            elapsed = time.monotonic() - started
        finally:
            stop_workers(pool)
    assert done.status == JobStatus.FAILED.value
    assert done.error_code == "timeout", done.error_message
    assert elapsed < 30  # the engine stalls for 60 s
    assert steps_of(job_id) == []  # the cut call recorded nothing
    money = money_of(job_id)
    assert money["release"] == money["reserve"] == done.reserved_amount


def test_worker_killed_mid_job_completes_once_charged_once(
    database_url: str, redis_url: str, app: Celery, artifacts_dir: Path
) -> None:
    """SIGKILL the executor worker while its answer call is in flight (a slow sim engine);
    a fresh worker gets the unacked message back (late ack) and the job is answered and
    charged once."""
    use_classifier(ALWAYS)
    logs = artifacts_dir / "pipeline-kill"
    with sim_engines(logs, tokens_per_s="30") as slow:
        # Short visibility timeout so the killed worker's unacked message comes back quickly.
        env = {
            **slow.env(),
            "TANDEM_VISIBILITY_TIMEOUT_S": "8",
            "TANDEM_TASK_SOFT_TIME_LIMIT_S": "5",
            "TANDEM_TASK_TIME_LIMIT_S": "7",
        }
        others = start_workers(["coordinator", "scorer", "accounting"], logs, env)
        victim = start_workers(["executor"], logs / "victim", env)
        try:
            wait_for_workers(SERVICES)
            job_id = submit(app, make_tenant(), QUESTION)
            deadline = time.monotonic() + 30
            status = "queued"
            while status != "executing" and time.monotonic() < deadline:
                time.sleep(0.02)
                with unit_of_work() as session:
                    status = str(session.scalar(select(Job.status).where(Job.id == job_id)))
            assert status == "executing"
            # Killed once the victim holds the message (kombu's "unacked" hash), not in the
            # instant between its BRPOP and that HSET: a kill there loses the delivery to the
            # sweeper's horizon instead of the visibility timeout this test is about. The entry
            # must be the executor's own: the scorer's delivery stays in the hash until its ack,
            # just after it published this one.
            broker = redis.Redis.from_url(redis_url)

            def held() -> bool:
                return any(b"executor.execute" in entry for entry in broker.hvals("unacked"))

            while not held() and time.monotonic() < deadline:
                time.sleep(0.01)
            assert held()
            process = victim.processes["executor"]
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            killed = time.monotonic()
            assert "answer" not in steps_of(job_id)  # killed mid-step, nothing recorded
            replacement = start_workers(["executor"], logs / "replacement", env)
            try:
                done = wait_terminal(job_id, timeout_s=120)
                recovered_s = time.monotonic() - killed
            finally:
                stop_workers(replacement)
        finally:
            stop_workers(others)
    assert done.status == JobStatus.SUCCEEDED.value
    # Put back by a worker's scan for expired deliveries, which runs every 10 s: within the
    # visibility timeout (8 s) and one scan, plus a worker start and the answer. kombu's own
    # throttle would scan every 100 s.
    assert recovered_s < 45, recovered_s
    assert steps_of(job_id) == ["score:0", "answer"]
    assert_charged_once(done)
