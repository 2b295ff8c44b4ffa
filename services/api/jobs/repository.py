"""The SQL the job routes read with: a tenant's jobs, their events and their model calls.

Admission's one statement is the pipeline's (:func:`shared.jobs.repository.admit`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, tuple_, update
from sqlalchemy.orm import Session

from shared.db.models import TERMINAL_STATUSES, Job, JobEvent, JobStatus, ModelCall

TERMINAL = [s.value for s in TERMINAL_STATUSES]


def job_for_tenant(session: Session, tenant_id: uuid.UUID, job_id: uuid.UUID) -> Job | None:
    return session.execute(
        select(Job).where(Job.id == job_id, Job.tenant_id == tenant_id)
    ).scalar_one_or_none()


def usage_by_model(session: Session, job_id: uuid.UUID) -> list[Any]:
    return list(
        session.execute(
            select(
                ModelCall.model,
                ModelCall.role,
                func.count().label("calls"),
                func.sum(ModelCall.prompt_tokens).label("prompt_tokens"),
                func.sum(ModelCall.generated_tokens).label("generated_tokens"),
                func.sum(ModelCall.flops_prompt + ModelCall.flops_generated).label("flops"),
                func.sum(ModelCall.cost).label("cost"),
            )
            .where(ModelCall.job_id == job_id)
            .group_by(ModelCall.model, ModelCall.role)
            .order_by(ModelCall.role, ModelCall.model)
        )
    )


def last_finish_reason(session: Session, job_id: uuid.UUID, role: str) -> str | None:
    return session.execute(
        select(ModelCall.finish_reason)
        .where(ModelCall.job_id == job_id, ModelCall.role == role)
        .order_by(ModelCall.created_at.desc())
        .limit(1)
    ).scalar_one_or_none()


def page_of_jobs(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    statuses: list[str],
    created_after: datetime | None,
    created_before: datetime | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Job]:
    query = select(Job).where(Job.tenant_id == tenant_id)
    if statuses:
        query = query.where(Job.status.in_(statuses))
    if created_after is not None:
        query = query.where(Job.created_at >= created_after)
    if created_before is not None:
        query = query.where(Job.created_at < created_before)
    if after is not None:
        query = query.where(tuple_(Job.created_at, Job.id) < tuple_(after[0], after[1]))
    query = query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
    return list(session.execute(query).scalars())


def cancel_if_not_started(session: Session, job_id: uuid.UUID) -> bool:
    """Cancel a queued job nobody has picked up; the pipeline's own transition out of
    ``queued`` is conditional too, so exactly one of them wins."""
    row = session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.status == JobStatus.QUEUED.value,
            Job.started_at.is_(None),
        )
        .values(
            status=JobStatus.CANCELLED.value,
            cancel_requested=True,
            finished_at=func.now(),
            error_code="cancelled",
            error_message="cancelled before it started",
        )
        .returning(Job.id)
    ).one_or_none()
    return row is not None


def request_cancel(session: Session, job_id: uuid.UUID) -> None:
    session.execute(update(Job).where(Job.id == job_id).values(cancel_requested=True))


def add_event(
    session: Session,
    job_id: uuid.UUID,
    kind: str,
    *,
    status: str | None = None,
    level: int | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    session.execute(
        insert(JobEvent).values(
            job_id=job_id, kind=kind, status=status, level=level, data=data or {}
        )
    )


def events_after(session: Session, job_id: uuid.UUID, after_id: int, limit: int) -> list[JobEvent]:
    return list(
        session.execute(
            select(JobEvent)
            .where(JobEvent.job_id == job_id, JobEvent.id > after_id)
            .order_by(JobEvent.id)
            .limit(limit)
        ).scalars()
    )


def job_status(session: Session, job_id: uuid.UUID) -> str | None:
    return session.execute(select(Job.status).where(Job.id == job_id)).scalar_one_or_none()


def job_by_idempotency_key(session: Session, tenant_id: uuid.UUID, key: str) -> Job | None:
    return session.execute(
        select(Job).where(Job.tenant_id == tenant_id, Job.idempotency_key == key)
    ).scalar_one_or_none()
