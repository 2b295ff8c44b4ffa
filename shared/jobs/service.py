"""Step helpers every pipeline service uses: record a call once, fail or cancel a job.

The step template itself (read, engine call, one recording transaction) is
:mod:`shared.jobs.steps`; these are its parts that accounting and the API use too.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from shared.costs import CallCost, call_cost
from shared.db.models import Job, JobStatus, Role, TerminationReason
from shared.db.session import unit_of_work
from shared.engines.base import Generation, ModelProfile
from shared.errors import NotFoundError
from shared.jobs import repository as repo
from shared.jobs.flow import NextTask, next_task, settle_task
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


def cancel(job_id: uuid.UUID | str, step: str) -> list[NextTask]:
    """At a step boundary: a job whose cancellation was asked for stops here and is settled."""
    with unit_of_work() as session:
        job = locked(session, job_id)
        if is_over(job):
            return []
        transition(session, job, JobStatus.CANCELLED, at_step=step)
    return [settle_task(job_id)]


def cancel_queued(session: Session, job: Job) -> None:
    """Cancel ``job`` (locked, still queued: no step has taken it) at its tenant's request; its
    hold is the caller's to settle. A step that read it queued records nothing after this:
    each step's record is conditional on the state it read."""
    job.cancel_requested = True
    job.error_code = "cancelled"
    job.error_message = "cancelled before it started"
    transition(session, job, JobStatus.CANCELLED, by="tenant")


def request_cancel(session: Session, job: Job) -> None:
    """Ask the pipeline to stop ``job`` (locked, running) at its next step boundary
    (:func:`cancel`); asking twice writes nothing more."""
    if not job.cancel_requested:
        job.cancel_requested = True
        add_event(session, job, "cancel_requested")


@dataclass(frozen=True)
class PricedCall:
    """A step's engine call priced at the job's prices: its cost and its ``model_calls`` row."""

    cost: CallCost
    row: dict[str, Any]

    def count(self, session: Session) -> None:
        """Its tokens, cost and FLOPs into the metrics once ``session`` commits."""
        count_call(
            session,
            role=self.row["role"],
            model=self.row["model"],
            prompt_tokens=self.row["prompt_tokens"],
            generated_tokens=self.row["generated_tokens"],
            cost=self.cost.cost,
            flops=self.cost.flops_prompt + self.cost.flops_generated,
        )


def priced_call(
    job: Job,
    *,
    step: str,
    role: Role,
    profile: ModelProfile,
    engine: str,
    level: int | None,
    generation: Generation,
    output_text: str | None,
) -> PricedCall:
    """A step's engine call with its cost at ``profile``'s prices (the job's)."""
    cost = call_cost(
        profile, generation.prompt_tokens, generation.generated_tokens, generation.cached_tokens
    )
    return PricedCall(
        cost,
        {
            "job_id": job.id,
            "step": step,
            "role": role.value,
            "model": profile.name,
            "engine": engine,
            "level": level,
            "prompt_tokens": generation.prompt_tokens,
            "generated_tokens": generation.generated_tokens,
            "cached_tokens": min(generation.cached_tokens, generation.prompt_tokens),
            "latency_ms": generation.latency_s * 1000.0,
            "flops_prompt": cost.flops_prompt,
            "flops_generated": cost.flops_generated,
            "cost": cost.cost,
            "output_text": output_text,
            "finish_reason": generation.finish_reason,
        },
    )


def record_call(session: Session, call: PricedCall) -> bool:
    """Record a step's call once in ``session``'s transaction; False if it was already."""
    inserted = repo.insert_call(session, call.row)
    if inserted:
        call.count(session)
    return inserted


def enter_execution(
    session: Session,
    job: Job,
    level: int,
    tokens: int,
    reason: TerminationReason,
    at: datetime | None = None,
) -> None:
    """Fix the insights the answer is conditioned on (level ``level``, ``tokens`` insight
    tokens) and why the insights stopped there, and move the locked job to executing."""
    job.truncation_level = level
    job.truncation_tokens = tokens
    job.termination_reason = reason.value
    transition(session, job, JobStatus.EXECUTING, level=level, at=at, reason=reason.value)


def record_retry(
    job_id: uuid.UUID | str, *, task: str, attempt: int, code: str, error: str
) -> None:
    """A step failed transiently and will be tried again: one event, the job row untouched."""
    with unit_of_work() as session:
        repo.add_retry_event(session, uuid.UUID(str(job_id)), task, attempt, code, error)


def record_expired(
    job_id: uuid.UUID | str, *, task: str, kwargs: Mapping[str, Any], expires: str
) -> NextTask | None:
    """A worker dropped one of the job's messages unstarted, past its expiry: the ``expired``
    event of a live job, and the step to send again when the dropped message is the one the
    job still waits for (None for a stale duplicate, or a job that is over).

    The message was late, not lost. Sent again at once, it waits at the back of its queue
    with a fresh expiry; left to the sweeper, the job would wait a horizon or two for it while
    the workers, their queue drained of the expired messages, stood idle."""
    with unit_of_work() as session:
        job = locked(session, job_id)
        if is_over(job):
            return None
        waits_for = next_task(job)
        again = (
            waits_for is not None
            and waits_for.name.value == task
            and dict(waits_for.kwargs) == dict(kwargs)
        )
        add_event(session, job, repo.EXPIRED, task=task, expires=expires, awaited=again)
    return waits_for if again else None


def mark_failed(session: Session, job: Job, code: str, message: str) -> None:
    """Record ``job`` (locked) as failed with its reason: its status, event and error fields.

    The API uses it for a submission whose first message could not be published."""
    transition(session, job, JobStatus.FAILED, error_code=code, message=message[:2000])
    job.error_code = code
    job.error_message = message


def fail_job(job_id: uuid.UUID | str, code: str, message: str) -> list[NextTask]:
    """Record a job as failed with its reason; its reservation is then settled by accounting."""
    with unit_of_work() as session:
        job = locked(session, job_id)
        if is_over(job):
            return []
        mark_failed(session, job, code, message)
    log.warning("job %s failed: %s: %s", job_id, code, message)
    return [settle_task(job_id)]


__all__ = [
    "add_event",
    "cancel",
    "cancel_queued",
    "enter_execution",
    "fail_job",
    "is_over",
    "locked",
    "mark_failed",
    "priced_call",
    "record_call",
    "record_expired",
    "record_retry",
    "request_cancel",
]
