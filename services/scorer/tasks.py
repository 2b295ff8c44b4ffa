"""Tasks of the scorer service. Thin: each calls a plain function
that tests can call directly."""

from __future__ import annotations

from typing import Any

from celery import Task

from services.scorer import service
from services.scorer.app import app
from shared.celery_base import health_payload
from shared.jobs.runner import run_step
from shared.tasks import TaskName


@app.task(name=TaskName.SCORER_HEALTH.value, shared=False)
def health() -> dict[str, str]:
    return health_payload("scorer")


@app.task(name=TaskName.SCORER_SCORE.value, shared=False, bind=True)
def score_level(self: Task, job_id: str, level: int) -> dict[str, Any]:
    return run_step(self, app, job_id, lambda: service.score(job_id, level))
