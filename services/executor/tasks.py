"""Tasks of the executor service. Thin: each calls a plain function
that tests can call directly."""

from __future__ import annotations

from typing import Any

from celery import Task

from services.executor import service
from services.executor.app import app
from shared.celery_base import health_payload
from shared.jobs.runner import run_step
from shared.tasks import TaskName


@app.task(name=TaskName.EXECUTOR_HEALTH.value, shared=False)
def health() -> dict[str, str]:
    return health_payload("executor")


@app.task(name=TaskName.EXECUTOR_EXECUTE.value, shared=False, bind=True)
def execute(self: Task, job_id: str) -> dict[str, Any]:
    return run_step(self, app, job_id, lambda: service.execute(job_id))
