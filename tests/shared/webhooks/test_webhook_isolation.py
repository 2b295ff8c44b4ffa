"""A receiver that never answers costs other tenants nothing: real accounting and webhooks
workers, real Redis and Postgres."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from celery import Celery
from sqlalchemy import select

from shared.celery_base import producer_app, send
from shared.db.models import Job
from shared.db.session import unit_of_work
from shared.tasks import TaskName
from shared.webhooks import outbox
from tests.conftest import WorkerPool, start_workers, stop_workers, wait_for_workers
from tests.shared.webhooks.conftest import Receiver, settling_job

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SERVICES = ["accounting", "webhooks"]


@pytest.fixture(scope="module")
def workers(database_url: str, redis_url: str, artifacts_dir: Path) -> Iterator[WorkerPool]:
    env = {
        "TANDEM_EGRESS_ALLOW_HOSTS": json.dumps(["127.0.0.1"]),
        "TANDEM_WEBHOOK_TIMEOUT_S": "5",
        "TANDEM_WEBHOOK_BACKOFF_S": "0.2",
    }
    pool = start_workers(SERVICES, artifacts_dir / "webhook-isolation", env)
    try:
        wait_for_workers(SERVICES)
        yield pool
    finally:
        stop_workers(pool)


@pytest.fixture
def app(redis_url: str) -> Iterator[Celery]:
    producer = producer_app()
    yield producer
    producer.close()


def status_of(job_id: uuid.UUID) -> str:
    with unit_of_work() as session:
        status = session.scalar(select(Job.status).where(Job.id == job_id))
    assert status is not None
    return status


def wait_until(check: Callable[[], bool], timeout_s: float) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout_s:
            raise TimeoutError
        time.sleep(0.05)
    return time.monotonic() - started


def test_a_silent_receiver_does_not_delay_another_tenants_job(
    workers: WorkerPool, app: Celery, silent_receiver: str
) -> None:
    stalled, _ = settling_job(silent_receiver)
    other, _ = settling_job(None)
    send(app, TaskName.ACCOUNTING_SETTLE, {"job_id": str(stalled)})
    wait_until(lambda: status_of(stalled) == "succeeded", 30)
    # The stalled webhook is now being attempted (each attempt waits out a 5 s timeout).
    send(app, TaskName.ACCOUNTING_SETTLE, {"job_id": str(other)})
    took = wait_until(lambda: status_of(other) == "succeeded", 30)
    print(f"another tenant's settlement behind a silent receiver: {took:.3f} s")
    assert took < 2.0, f"another tenant's settlement waited {took:.1f} s behind a dead receiver"
    with unit_of_work() as session:
        state = outbox.state_of(session, stalled)
    assert state is not None and state[0] == "pending"


def test_the_webhooks_worker_delivers_with_retries(
    workers: WorkerPool, app: Celery, receiver: Receiver
) -> None:
    receiver.fail_first = 2
    job_id, _ = settling_job(receiver.url)
    send(app, TaskName.ACCOUNTING_SETTLE, {"job_id": str(job_id)})

    def delivered() -> bool:
        with unit_of_work() as session:
            return outbox.state_of(session, job_id) == ("delivered", 3)

    wait_until(delivered, 30)
    assert len(receiver.received) == 3
