"""A task sent by name reaches each service's queue and returns through real Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.celery_base import producer_app, send
from shared.tasks import HEALTH_TASKS, Queue
from tests.conftest import WorkerPool, start_workers, stop_workers, wait_for_workers

SERVICES = [queue.value for queue in Queue]


@pytest.fixture(scope="module")
def workers(redis_url: str, database_url: str, artifacts_dir: Path) -> Iterator[WorkerPool]:
    pool = start_workers(SERVICES, artifacts_dir / "logs" / "roundtrip")
    try:
        wait_for_workers(SERVICES, timeout_s=90)
        yield pool
    finally:
        stop_workers(pool)


@pytest.mark.e2e
@pytest.mark.parametrize("queue", list(Queue))
def test_health_task_round_trips_through_each_queue(workers: WorkerPool, queue: Queue) -> None:
    app = producer_app()
    try:
        task_id = send(app, HEALTH_TASKS[queue], {})
        answer = app.AsyncResult(task_id).get(timeout=30)
    finally:
        app.close()
    assert answer["service"] == queue.value
    assert answer["status"] == "ok"


@pytest.mark.e2e
def test_each_worker_registers_only_its_own_tasks(workers: WorkerPool) -> None:
    app = producer_app()
    try:
        registered = app.control.inspect(timeout=5).registered() or {}
    finally:
        app.close()
    by_service = {name.split("@", 1)[0]: set(tasks) for name, tasks in registered.items()}
    assert set(by_service) >= set(SERVICES)
    for service in SERVICES:
        assert by_service[service], service
        assert all(task.startswith(f"{service}.") for task in by_service[service]), by_service
