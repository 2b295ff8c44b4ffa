"""A prefork worker serves what its pool processes counted on its metrics port."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.celery_base import producer_app, send
from shared.tasks import HEALTH_TASKS, Queue
from tests.conftest import start_workers, stop_workers, wait_for_workers
from tests.services.engine.server_fixtures import free_port


def task_count(url: str, task: str) -> float:
    text = httpx.get(url, timeout=10).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "tandem_task_duration_seconds_count"
        and s.labels == {"task": task, "outcome": "ok"}
    )


@pytest.mark.e2e
def test_worker_metrics_port_counts_the_pool_processes_tasks(
    redis_url: str, database_url: str, artifacts_dir: Path
) -> None:
    port = free_port()
    pool = start_workers(
        ["scorer"],
        artifacts_dir / "logs" / "worker-metrics",
        extra_env={"TANDEM_METRICS_PORT": str(port)},
    )
    url = f"http://127.0.0.1:{port}/metrics"
    task = HEALTH_TASKS[Queue.SCORER]
    try:
        wait_for_workers(["scorer"], timeout_s=90)
        before = task_count(url, task.value)
        assert before >= 1  # wait_for_workers itself ran the health task
        app = producer_app()
        try:
            for _ in range(3):
                app.AsyncResult(send(app, task, {})).get(timeout=30)
        finally:
            app.close()
        assert task_count(url, task.value) == before + 3
    finally:
        stop_workers(pool)
