"""What the job routes read and change after admission, as plain functions over one unit of
work each: a job's view and audit, the paginated list, cancellation, and the event stream."""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from services.api.db import unit_of_work
from services.api.jobs.schemas import (
    JobAudit,
    JobOut,
    JobSummary,
    ModelUsage,
    Timings,
    Truncation,
)
from services.api.settings import ApiSettings
from shared.budgets import settle
from shared.db.models import Job, JobStatus, Tenant
from shared.errors import NotFoundError, ValidationFailed
from shared.jobs import repository as repo
from shared.jobs.audit import job_audit as audit_of
from shared.jobs.service import cancel_queued, is_over, locked, request_cancel

# A JobEvent id is a Postgres bigint.
MAX_EVENT_ID = 2**63 - 1
EVENT_ID = re.compile(r"^[0-9]{1,19}$")


def job_url(job_id: uuid.UUID) -> str:
    return f"/v1/jobs/{job_id}"


def get_job(settings: ApiSettings, tenant: Tenant, job_id: uuid.UUID) -> JobOut:
    with unit_of_work(settings) as session:
        job = repo.job_for_tenant(session, tenant.id, job_id)
        if job is None:
            raise NotFoundError(f"job {job_id} not found", field="id")
        return job_view(job, repo.usage_by_model(session, job.id))


def job_audit(settings: ApiSettings, tenant: Tenant, job_id: uuid.UUID) -> JobAudit:
    """The audit trail ``tandem audit job`` prints, for the job's own tenant only."""
    with unit_of_work(settings) as session:
        if repo.job_for_tenant(session, tenant.id, job_id) is None:
            raise NotFoundError(f"job {job_id} not found", field="id")
        return JobAudit.model_validate(audit_of(session, job_id))


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start and end else None


def job_view(job: Job, usage: list[Any]) -> JobOut:
    return JobOut(
        id=job.id,
        status=JobStatus(job.status),
        domain=job.domain,
        policy=job.policy,
        question=job.question,
        answer=job.answer,
        reasoning=job.reasoning,
        insights=job.insights,
        current_level=job.current_level,
        truncation=Truncation(
            level=job.truncation_level,
            tokens=job.truncation_tokens,
            reason=job.termination_reason,
            scores=job.scores,
            thresholds=job.thresholds,
            classifier_version=job.classifier_version,
        ),
        usage=[
            ModelUsage(
                model=row.model,
                role=row.role,
                calls=row.calls,
                prompt_tokens=row.prompt_tokens or 0,
                generated_tokens=row.generated_tokens or 0,
                flops=row.flops or Decimal(0),
                cost=row.cost or Decimal(0),
            )
            for row in usage
        ],
        reserved=job.reserved_amount,
        cost=job.cost,
        max_cost=job.max_cost,
        levels=list(job.levels),
        max_answer_tokens=job.max_answer_tokens,
        prompt_version=job.prompt_version,
        cancel_requested=job.cancel_requested,
        error=({"code": job.error_code, "message": job.error_message} if job.error_code else None),
        metadata=job.job_metadata,
        trace_id=job.trace_id,
        api_key_id=job.api_key_id,
        timings=Timings(
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            queued_s=_seconds(job.created_at, job.started_at),
            run_s=_seconds(job.started_at, job.finished_at),
        ),
    )


def encode_cursor(job: Job) -> str:
    raw = json.dumps([job.created_at.isoformat(), str(job.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, job_id = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not isinstance(created, str) or not isinstance(job_id, str):
            raise TypeError("a cursor holds two strings")
        when = datetime.fromisoformat(created)
        if when.tzinfo is None:
            raise ValueError("naive timestamp")
        return when, uuid.UUID(job_id)
    except (ValueError, TypeError, binascii.Error, UnicodeError) as exc:
        raise ValidationFailed(
            "cursor is not one this API returned; pass next_cursor unchanged", field="cursor"
        ) from exc


def list_jobs(
    settings: ApiSettings,
    tenant: Tenant,
    *,
    statuses: list[JobStatus],
    created_after: datetime | None,
    created_before: datetime | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[JobSummary], str | None]:
    after = decode_cursor(cursor) if cursor else None
    with unit_of_work(settings) as session:
        jobs = repo.page_of_jobs(
            session,
            tenant.id,
            statuses=[s.value for s in statuses],
            created_after=created_after,
            created_before=created_before,
            after=after,
            limit=limit + 1,
        )
    more = len(jobs) > limit
    jobs = jobs[:limit]
    summaries = [
        JobSummary(
            id=j.id,
            status=JobStatus(j.status),
            domain=j.domain,
            policy=j.policy,
            cost=j.cost,
            created_at=j.created_at,
            finished_at=j.finished_at,
            url=job_url(j.id),
        )
        for j in jobs
    ]
    return summaries, encode_cursor(jobs[-1]) if more and jobs else None


def cancel_job(settings: ApiSettings, tenant: Tenant, job_id: uuid.UUID) -> Job:
    """A queued job nobody started is cancelled and settled at once; a running one is asked
    to stop at its next step boundary (the pipeline reads ``cancel_requested``)."""
    with unit_of_work(settings) as session:
        job = repo.job_for_tenant(session, tenant.id, job_id)
        if job is None:
            raise NotFoundError(f"job {job_id} not found", field="id")
        if is_over(job):
            return job
        job = locked(session, job.id)  # a step recording now waits, or has moved it already
        if JobStatus(job.status) is JobStatus.QUEUED:
            cancel_queued(session, job)
            settle(session, job.id, Decimal(0), locked=job)
        elif not is_over(job):
            request_cancel(session, job)
        session.flush()
        return job


def resume_after(last_event_id: str | None) -> int:
    """The event id an SSE client resumes after: 0 without one, else a bigint event id."""
    if not last_event_id:
        return 0
    if not EVENT_ID.match(last_event_id) or int(last_event_id) > MAX_EVENT_ID:
        raise ValidationFailed(
            "Last-Event-ID must be the id of an event this stream sent", field="Last-Event-ID"
        )
    return int(last_event_id)


def check_owned(settings: ApiSettings, tenant: Tenant, job_id: uuid.UUID) -> Job:
    with unit_of_work(settings) as session:
        job = repo.job_for_tenant(session, tenant.id, job_id)
        if job is None:
            raise NotFoundError(f"job {job_id} not found", field="id")
        return job


def events_since(
    settings: ApiSettings, job_id: uuid.UUID, after_id: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Up to 100 events after ``after_id``, and the job's status, in one unit of work.

    The status is read first: events are committed with (or before) the status change they
    lead to, so once a status read as terminal, the events read after it are all there are.
    """
    with unit_of_work(settings) as session:
        status = repo.job_status(session, job_id)
        events = repo.events_after(session, job_id, after_id, 100)
        return [
            {
                "id": e.id,
                "kind": e.kind,
                "status": e.status,
                "level": e.level,
                "data": e.data,
                "created_at": e.created_at.isoformat(),
            }
            for e in events
        ], status
