"""Tasks of the coordinator service. Thin: each calls a plain function
that tests can call directly."""

from __future__ import annotations

from typing import Any

from celery import Task

from services.coordinator import service
from services.coordinator.app import app
from shared.celery_base import health_payload
from shared.jobs.runner import run_step
from shared.tasks import TaskName


@app.task(name=TaskName.COORDINATOR_HEALTH.value, shared=False)
def health() -> dict[str, str]:
    return health_payload("coordinator")


@app.task(name=TaskName.COORDINATOR_EXTEND.value, shared=False, bind=True)
def extend_insights(self: Task, job_id: str, level: int) -> dict[str, Any]:
    return run_step(self, app, job_id, lambda: service.extend(job_id, level))
