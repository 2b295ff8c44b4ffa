"""Which task comes next, and publishing it (always after the commit that made it needed).

The flow of every policy is declared here, once: a job's status and level say which step it
waits for (:func:`next_task`). Each step, when it records its work, moves the job into the
status of the step that follows it, so the job is never between two states and a redelivered or
lost message can always be answered from the job's row alone.

    tandem        queued → scoring(0) → [coordinating(t) → scoring(t)]* → executing
    fixed_level   queued → coordinating(1) → ... → coordinating(t) → executing
    llm / slm     queued → executing
    then          executing → settling → succeeded (failed and cancelled are settled too)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from celery import Celery

from shared.db.models import Job, JobStatus, Policy
from shared.jobs.messages import push
from shared.settings import get_worker_settings
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


def next_task(job: Job) -> NextTask | None:
    """The step ``job`` waits for in its current state; None once nothing is left to do."""
    job_id = str(job.id)
    status = JobStatus(job.status)
    if status is JobStatus.QUEUED:
        return first_task(job)
    if status is JobStatus.SCORING:
        return NextTask(TaskName.SCORER_SCORE, {"job_id": job_id, "level": job.current_level})
    if status is JobStatus.COORDINATING:
        level = job.current_level + 1
        return NextTask(TaskName.COORDINATOR_EXTEND, {"job_id": job_id, "level": level})
    if status is JobStatus.EXECUTING:
        return NextTask(TaskName.EXECUTOR_EXECUTE, {"job_id": job_id})
    if status in (JobStatus.SETTLING, JobStatus.FAILED, JobStatus.CANCELLED):
        return settle_task(job_id)
    return None


def after_extension(job: Job, level: int) -> JobStatus:
    """Where a job goes once its insights reach ``level``: scored under tandem; under
    fixed_level, extended again until its level (or until the coordinator has finished)."""
    if Policy(job.policy) is not Policy.FIXED_LEVEL:
        return JobStatus.SCORING
    if level < (job.fixed_level or 0) and not job.insights_finished:
        return JobStatus.COORDINATING
    return JobStatus.EXECUTING


def publish(app: Celery, tasks: Iterable[NextTask]) -> list[str]:
    """Each task's message onto its queue on ``app``'s broker, in one round trip
    (:mod:`shared.jobs.messages`); raises one of its ``BROKER_DOWN`` when that is unreachable."""
    return push(
        str(app.conf.broker_url),
        [(task.name, task.kwargs) for task in tasks],
        expires_s=get_worker_settings().task_expires_s,
    )


def start_job(app: Celery, job: Job) -> str:
    """Publish a committed job's first task; the API calls this after its commit."""
    (task_id,) = publish(app, [first_task(job)])
    return task_id


def settle_task(job_id: uuid.UUID | str) -> NextTask:
    return NextTask(TaskName.ACCOUNTING_SETTLE, {"job_id": str(job_id)})
