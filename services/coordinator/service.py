"""Coordinator: extend the LLM's insights from level t-1 to level t (DESIGN.md §1).

The model continues the insights written so far (the prompt ends with them), for at most
``levels[t] - levels[t-1]`` new tokens. It has finished its insights by itself when it stops
on the end-of-insights marker or its end-of-sequence token rather than on the token budget.
"""

from __future__ import annotations

import uuid

from shared.db.models import Job, JobStatus, Policy, Role
from shared.db.session import unit_of_work
from shared.engines.base import EngineClient
from shared.insights import Extension, extend_insights
from shared.jobs import repository as repo
from shared.jobs.flow import NextTask
from shared.jobs.runner import call_engine
from shared.jobs.service import cancel_if_requested, is_over, locked, record_call
from shared.jobs.states import add_event, transition
from shared.tasks import TaskName


def step_name(level: int) -> str:
    return f"insights:{level}"


def next_after(job: Job, level: int) -> list[NextTask]:
    """What follows a recorded extension to ``level``."""
    job_id = str(job.id)
    if Policy(job.policy) is Policy.FIXED_LEVEL:
        target = job.fixed_level or 0
        if level < target and not job.insights_finished:
            return [NextTask(TaskName.COORDINATOR_EXTEND, {"job_id": job_id, "level": level + 1})]
        return [NextTask(TaskName.EXECUTOR_EXECUTE, {"job_id": job_id})]
    return [NextTask(TaskName.SCORER_SCORE, {"job_id": job_id, "level": level})]


def _waiting_for_next(job: Job, level: int) -> bool:
    """The step is recorded and nothing after it has started: re-announce its successor."""
    return job.current_level == level and job.status == JobStatus.COORDINATING.value


def extend(job_id: uuid.UUID | str, level: int) -> list[NextTask]:
    step = step_name(level)
    with unit_of_work() as session:
        job = locked(session, job_id)
        if repo.get_call(session, job.id, step) is not None:
            return next_after(job, level) if _waiting_for_next(job, level) else []
        if is_over(job):
            return []
        cancelled = cancel_if_requested(session, job, step)
        if cancelled is not None:
            return cancelled
        if level < 1 or level >= len(job.levels) or job.current_level != level - 1:
            return []  # a stale or foreign message: this job is not waiting for it
        if not repo.has_status_event(session, job.id, JobStatus.COORDINATING, level):
            transition(session, job, JobStatus.COORDINATING, level=level)
        budget = job.levels[level] - job.levels[level - 1]
        question, insights, domain = job.question, job.insights, job.domain

    async def extend_job(client: EngineClient) -> Extension:
        return await extend_insights(client, question, insights, domain, budget)

    extension, config = call_engine(Role.COORDINATOR, extend_job)
    generation, text, finished = extension.generation, extension.text, extension.finished

    with unit_of_work() as session:
        job = locked(session, job_id)
        if is_over(job):
            return []
        if not record_call(
            session,
            job,
            step=step,
            role=Role.COORDINATOR,
            profile=config.profile,
            engine=config.kind.value,
            level=level,
            generation=generation,
            output_text=generation.text,
        ):
            return []  # a duplicate delivery recorded it first and announced the next step
        job.insights = job.insights + text
        job.insight_tokens = job.insight_tokens + generation.generated_tokens
        job.insights_finished = finished
        job.current_level = level
        add_event(
            session,
            job,
            "insights",
            level=level,
            new_tokens=generation.generated_tokens,
            insight_tokens=job.insight_tokens,
            insight_chars=len(job.insights),
            finished=finished,
            finish_reason=generation.finish_reason,
        )
        return next_after(job, level)
