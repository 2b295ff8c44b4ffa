"""What the routes, the audit and the sweeper read of jobs: a tenant's jobs, their events and
calls, stuck and unsettled jobs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from shared.db.models import (
    TERMINAL_STATUSES,
    Job,
    JobEvent,
    JobStatus,
    LedgerEntry,
    LedgerKind,
    ModelCall,
)


def calls(session: Session, job_id: uuid.UUID) -> list[ModelCall]:
    return list(
        session.scalars(
            select(ModelCall).where(ModelCall.job_id == job_id).order_by(ModelCall.created_at)
        )
    )


def events(session: Session, job_id: uuid.UUID) -> list[JobEvent]:
    return list(
        session.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id))
    )


def shadow_run(session: Session, job_id: uuid.UUID) -> Job | None:
    """The job's shadow run (services.accounting.shadow), if it has one."""
    return session.scalars(select(Job).where(Job.shadow_of == job_id)).first()


def stale_jobs(
    session: Session,
    before: datetime,
    *,
    after: tuple[datetime, uuid.UUID] | None = None,
    limit: int = 100,
) -> list[tuple[uuid.UUID, datetime]]:
    """Live jobs untouched since ``before`` (their worker died or their message was lost), with
    when they were last touched, least recently first; ``after`` the (updated_at, id) of the
    last of the previous page."""
    live = [s.value for s in JobStatus if s not in TERMINAL_STATUSES]
    query = select(Job.id, Job.updated_at).where(Job.status.in_(live), Job.updated_at < before)
    if after is not None:
        query = query.where(tuple_(Job.updated_at, Job.id) > tuple_(*after))
    rows = session.execute(query.order_by(Job.updated_at, Job.id).limit(limit))
    return [(job_id, updated_at) for job_id, updated_at in rows]


def unsettled_finished_jobs(session: Session, limit: int = 100) -> list[uuid.UUID]:
    """Failed or cancelled jobs holding a reservation with no settle entry yet."""
    settled = select(LedgerEntry.job_id).where(LedgerEntry.kind == LedgerKind.SETTLE.value)
    return list(
        session.scalars(
            select(Job.id)
            .where(
                Job.status.in_([JobStatus.FAILED.value, JobStatus.CANCELLED.value]),
                Job.budget_id.is_not(None),
                Job.id.not_in(settled),
            )
            .limit(limit)
        )
    )


def job_for_tenant(session: Session, tenant_id: uuid.UUID, job_id: uuid.UUID) -> Job | None:
    return session.execute(
        select(Job).where(Job.id == job_id, Job.tenant_id == tenant_id)
    ).scalar_one_or_none()


def call_totals() -> tuple[ColumnElement[Any], ...]:
    """Model calls summed over a group: how many, their tokens, FLOPs and cost (a job's usage
    per model, and the hourly usage roll-up a settlement adds)."""
    return (
        func.count().label("calls"),
        func.sum(ModelCall.prompt_tokens).label("prompt_tokens"),
        func.sum(ModelCall.generated_tokens).label("generated_tokens"),
        func.sum(ModelCall.flops_prompt + ModelCall.flops_generated).label("flops"),
        func.sum(ModelCall.cost).label("cost"),
    )


def usage_by_model(session: Session, job_id: uuid.UUID) -> list[Any]:
    return list(
        session.execute(
            select(ModelCall.model, ModelCall.role, *call_totals())
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
