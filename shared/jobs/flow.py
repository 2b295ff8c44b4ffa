"""Which task comes next, and publishing it (always after the commit that made it needed)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from celery import Celery

from shared.celery_base import send
from shared.db.models import Job, Policy
from shared.tasks import TaskName


@dataclass(frozen=True)
class NextTask:
    name: TaskName
    kwargs: Mapping[str, Any] = field(default_factory=dict)


def first_task(job: Job) -> NextTask:
    """The first step of a freshly queued job, by policy.

    tandem scores level 0 (the executor alone) first; llm_only and slm_only go straight to
    the executor service (which answers with the coordinator's model for llm_only);
    fixed_level(t) extends the insights to level t, or executes at once when t is 0.
    """
    job_id = str(job.id)
    policy = Policy(job.policy)
    if policy is Policy.TANDEM:
        return NextTask(TaskName.SCORER_SCORE, {"job_id": job_id, "level": 0})
    if policy is Policy.FIXED_LEVEL and (job.fixed_level or 0) > 0:
        return NextTask(TaskName.COORDINATOR_EXTEND, {"job_id": job_id, "level": 1})
    return NextTask(TaskName.EXECUTOR_EXECUTE, {"job_id": job_id})


def publish(app: Celery, tasks: Iterable[NextTask]) -> list[str]:
    return [send(app, task.name, task.kwargs) for task in tasks]


def start_job(app: Celery, job: Job) -> str:
    """Publish a committed job's first task; the API calls this after its commit."""
    (task_id,) = publish(app, [first_task(job)])
    return task_id


def settle_task(job_id: uuid.UUID | str) -> NextTask:
    return NextTask(TaskName.ACCOUNTING_SETTLE, {"job_id": str(job_id)})
