"""Step helpers every pipeline service uses: record a call once, fail or cancel a job.

A step is: lock the job, see whether this step is already recorded (then only re-announce the
next task if the job is still waiting for it), otherwise do the work and record it under the
unique (job_id, step) key together with the job's new state, in one transaction. Engine calls
run outside any transaction; their result is recorded in a second, short one.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from shared.costs import call_cost
from shared.db.models import Job, JobStatus, Role
from shared.db.session import unit_of_work
from shared.engines.base import Generation, ModelProfile
from shared.errors import NotFoundError
from shared.jobs import repository as repo
from shared.jobs.flow import NextTask, settle_task
from shared.jobs.states import add_event, transition
from shared.logging import bind
from shared.metrics import count_call

log = logging.getLogger(__name__)


def locked(session: Session, job_id: uuid.UUID | str) -> Job:
    job = repo.lock_job(session, uuid.UUID(str(job_id)))
    if job is None:
        raise NotFoundError(f"job {job_id} not found", field="job_id")
    bind(tenant_id=job.tenant_id)  # every later line of this task names the tenant too
    return job


def is_over(job: Job) -> bool:
    return JobStatus(job.status).terminal


def cancel_if_requested(session: Session, job: Job, step: str) -> list[NextTask] | None:
    """At a step boundary: a job whose cancellation was asked for stops here and is settled."""
    if not job.cancel_requested:
        return None
    transition(session, job, JobStatus.CANCELLED, at_step=step)
    job.finished_at = datetime.now(UTC)
    return [settle_task(job.id)]


def record_call(
    session: Session,
    job: Job,
    *,
    step: str,
    role: Role,
    profile: ModelProfile,
    engine: str,
    level: int | None,
    generation: Generation,
    output_text: str | None,
) -> bool:
    """Record a step's engine call with its cost; False if the step was already recorded."""
    cost = call_cost(profile, generation.prompt_tokens, generation.generated_tokens)
    inserted = repo.insert_call(
        session,
        {
            "job_id": job.id,
            "step": step,
            "role": role.value,
            "model": profile.name,
            "engine": engine,
            "level": level,
            "prompt_tokens": generation.prompt_tokens,
            "generated_tokens": generation.generated_tokens,
            "latency_ms": generation.latency_s * 1000.0,
            "flops_prompt": cost.flops_prompt,
            "flops_generated": cost.flops_generated,
            "cost": cost.cost,
            "output_text": output_text,
            "finish_reason": generation.finish_reason,
        },
    )
    if inserted:
        count_call(
            session,
            role=role.value,
            model=profile.name,
            prompt_tokens=generation.prompt_tokens,
            generated_tokens=generation.generated_tokens,
            cost=cost.cost,
            flops=cost.flops_prompt + cost.flops_generated,
        )
    return inserted


def fail_job(job_id: uuid.UUID | str, code: str, message: str) -> list[NextTask]:
    """Record a job as failed with its reason; its reservation is then settled by accounting."""
    with unit_of_work() as session:
        job = locked(session, job_id)
        if is_over(job):
            return []
        transition(session, job, JobStatus.FAILED, error_code=code, message=message[:2000])
        job.error_code = code
        job.error_message = message
        job.finished_at = datetime.now(UTC)
    log.warning("job %s failed: %s: %s", job_id, code, message)
    return [settle_task(job_id)]


__all__ = ["add_event", "cancel_if_requested", "fail_job", "is_over", "locked", "record_call"]
