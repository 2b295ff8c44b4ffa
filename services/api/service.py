"""What the job routes do, as plain functions over one unit of work each."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.api import repository as repo
from services.api.errors import PayloadTooLarge, RateLimited
from services.api.plans import Template, cost_of, requested_plan, shrunk_plans, template_for
from services.api.publish import Publisher
from services.api.schemas import (
    JobAudit,
    JobCreate,
    JobOut,
    JobSummary,
    ModelUsage,
    Timings,
    Truncation,
)
from services.api.settings import ApiSettings
from shared.budgets import BudgetExceeded, current_budget, record_reserve, reserve, settle
from shared.costs import Plan, Profiles
from shared.db.models import Job, JobStatus, Tenant
from shared.db.session import unit_of_work
from shared.errors import NotFoundError, TransientError, ValidationFailed
from shared.jobs.audit import job_audit as audit_of
from shared.metrics import JOBS_SUBMITTED, count_rejection, on_commit, tenant_label
from shared.tenants import Conflict
from shared.tracing import current_trace_id

log = logging.getLogger(__name__)

IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:\-]{1,255}$")


@dataclass(frozen=True)
class Submission:
    job: Job
    created: bool
    shrunk: bool


def job_url(job_id: uuid.UUID) -> str:
    return f"/v1/jobs/{job_id}"


def check_idempotency_key(key: str | None) -> str | None:
    if key is not None and not IDEMPOTENCY_KEY.match(key):
        raise ValidationFailed(
            "Idempotency-Key must be 1-255 characters of letters, digits and . _ : -",
            field="Idempotency-Key",
        )
    return key


def _check_request(settings: ApiSettings, body: JobCreate) -> None:
    if len(body.question) > settings.max_question_chars:
        raise PayloadTooLarge(
            f"question is {len(body.question)} characters; the limit is "
            f"{settings.max_question_chars}",
            field="question",
        )
    if not body.question.strip():
        raise ValidationFailed("question must not be blank", field="question")
    if "\x00" in body.question:
        raise ValidationFailed("question must not contain NUL characters", field="question")
    try:
        metadata = json.dumps(body.metadata, allow_nan=False)
    except ValueError as exc:  # NaN / Infinity: not representable in JSON(B)
        raise ValidationFailed(
            "metadata must not contain NaN or Infinity", field="metadata"
        ) from exc
    if len(metadata.encode()) > settings.max_metadata_bytes or "\\u0000" in metadata:
        raise ValidationFailed(
            f"metadata must be JSON of at most {settings.max_metadata_bytes} bytes without NULs",
            field="metadata",
        )
    if body.max_cost is not None and not (
        body.max_cost.is_finite() and body.max_cost <= settings.max_cost_limit
    ):
        raise ValidationFailed(
            f"max_cost must be a positive amount of at most {settings.max_cost_limit}",
            field="max_cost",
        )


def _same_request(job: Job, body: JobCreate) -> bool:
    return (
        job.question == body.question
        and job.domain == body.domain.value
        and job.policy == body.policy.value
    )


def _per_request_limit(tenant: Tenant, body: JobCreate) -> Decimal | None:
    limits = [x for x in (body.max_cost, tenant.max_cost_per_request) if x is not None]
    return min(limits) if limits else None


def submit_job(
    settings: ApiSettings,
    tenant: Tenant,
    body: JobCreate,
    *,
    profiles: Profiles,
    publish: Publisher,
    idempotency_key: str | None = None,
) -> Submission:
    """Admit (reserve + insert, one transaction) and then publish; or refuse with nothing kept."""
    try:
        return _submit(settings, tenant, body, profiles, publish, idempotency_key)
    except (BudgetExceeded, RateLimited) as refused:
        count_rejection(refused.code, tenant.name, settings.metrics_tenants)
        raise


def _submit(
    settings: ApiSettings,
    tenant: Tenant,
    body: JobCreate,
    profiles: Profiles,
    publish: Publisher,
    idempotency_key: str | None,
) -> Submission:
    _check_request(settings, body)
    if idempotency_key is not None:
        with unit_of_work(settings.database_url) as session:
            existing = repo.job_by_idempotency_key(session, tenant.id, idempotency_key)
            if existing is not None:
                return _replay(existing, body)
    template = template_for(body.domain, profiles)
    plan = requested_plan(
        settings,
        body.domain,
        body.policy,
        body.level,
        body.max_levels,
        body.max_answer_tokens,
        body.levels,
    )
    plans = list(shrunk_plans(plan, settings.min_answer_tokens)) if body.allow_shrink else [plan]
    priced = [(p, cost_of(p, profiles, body.question, template)) for p in plans]
    limit = _per_request_limit(tenant, body)
    fitting = [(p, c) for p, c in priced if limit is None or c <= limit]
    if not fitting:
        raise BudgetExceeded(
            f"even the smallest plan costs {priced[-1][1]}, above the per-request maximum {limit}",
            cap=limit or Decimal(0),
            spent=Decimal(0),
            reserved=Decimal(0),
            requested=priced[-1][1],
            limit="max_cost",
            field="max_cost",
        )
    try:
        with unit_of_work(settings.database_url) as session:
            job = _admit(settings, session, tenant, body, fitting, idempotency_key, template)
    except IntegrityError:
        if idempotency_key is None:
            raise
        # A concurrent submission with the same key won; everything of ours was rolled back.
        with unit_of_work(settings.database_url) as session:
            existing = repo.job_by_idempotency_key(session, tenant.id, idempotency_key)
        if existing is None:
            raise
        return _replay(existing, body)
    try:
        publish(job)
    except Exception as exc:
        log.exception("could not publish job %s", job.id)
        with unit_of_work(settings.database_url) as session:
            repo.mark_failed(session, job.id, "publish_failed", "the job queue was unreachable")
            settle(session, job.id, Decimal(0))
        raise TransientError("the job queue is unreachable; retry shortly") from exc
    return Submission(
        job,
        created=True,
        shrunk=list(job.levels) != list(plan.levels)
        or job.max_answer_tokens != plan.max_answer_tokens,
    )


def _replay(job: Job, body: JobCreate) -> Submission:
    if not _same_request(job, body):
        raise Conflict(
            "this Idempotency-Key was used for a different request", field="Idempotency-Key"
        )
    return Submission(job, created=False, shrunk=False)


def _admit(
    settings: ApiSettings,
    session: Session,
    tenant: Tenant,
    body: JobCreate,
    fitting: list[tuple[Plan, Decimal]],
    idempotency_key: str | None,
    template: Template,
) -> Job:
    """Insert the job, then reserve: the budget row's lock is taken as late as possible, so
    concurrent admissions of one tenant queue behind a conditional UPDATE and a commit only."""
    plan, cost = fitting[0]
    budget = current_budget(session, tenant)
    job = Job(
        id=uuid.uuid4(),
        tenant_id=tenant.id,
        status=JobStatus.QUEUED.value,
        domain=body.domain.value,
        policy=body.policy.value,
        question=body.question,
        job_metadata=body.metadata,
        webhook_url=str(body.webhook_url) if body.webhook_url else None,
        idempotency_key=idempotency_key,
        levels=list(plan.levels),
        fixed_level=plan.fixed_level,
        max_answer_tokens=plan.max_answer_tokens,
        prompt_version=template.version,
        budget_id=budget.id,
        max_cost=body.max_cost,
        reserved_amount=cost,
        trace_id=current_trace_id(),
    )
    session.add(job)
    session.flush()  # a reused Idempotency-Key fails here, before any lock is taken
    candidates = fitting
    while True:
        plan, cost = candidates[0]
        try:
            reservation = reserve(session, tenant, cost)
            break
        except BudgetExceeded as exc:
            candidates = [(p, c) for p, c in candidates[1:] if c <= exc.remaining]
            if not candidates:
                raise
    # The budget row is locked until commit, so this count cannot race another admission;
    # it includes the job being admitted.
    if tenant.max_concurrent_jobs is not None and (
        repo.count_active(session, tenant.id) > tenant.max_concurrent_jobs
    ):
        raise RateLimited(
            f"at most {tenant.max_concurrent_jobs} jobs may run at once; wait for one to finish",
            retry_after_s=settings.concurrency_retry_after_s,
            limit="concurrent_jobs",
        )
    job.levels = list(plan.levels)
    job.max_answer_tokens = plan.max_answer_tokens
    job.budget_id = reservation.budget_id  # differs only if a period ended in between
    job.reserved_amount = reservation.amount
    record_reserve(session, tenant.id, job.id, reservation)
    submitted = JOBS_SUBMITTED.labels(
        job.policy, job.domain, tenant_label(tenant.name, settings.metrics_tenants)
    )
    on_commit(session, submitted.inc)
    repo.add_event(
        session,
        job.id,
        "submitted",
        status=JobStatus.QUEUED.value,
        data={
            "reserved": str(reservation.amount),
            "levels": list(plan.levels),
            "max_answer_tokens": plan.max_answer_tokens,
        },
    )
    return job


def get_job(settings: ApiSettings, tenant: Tenant, job_id: uuid.UUID) -> JobOut:
    with unit_of_work(settings.database_url) as session:
        job = repo.job_for_tenant(session, tenant.id, job_id)
        if job is None:
            raise NotFoundError(f"job {job_id} not found", field="id")
        return job_view(job, repo.usage_by_model(session, job.id))


def job_audit(settings: ApiSettings, tenant: Tenant, job_id: uuid.UUID) -> JobAudit:
    """The audit trail ``tandem audit job`` prints, for the job's own tenant only."""
    with unit_of_work(settings.database_url) as session:
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
    with unit_of_work(settings.database_url) as session:
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
    with unit_of_work(settings.database_url) as session:
        job = repo.job_for_tenant(session, tenant.id, job_id)
        if job is None:
            raise NotFoundError(f"job {job_id} not found", field="id")
        if JobStatus(job.status).terminal:
            return job
        if repo.cancel_if_not_started(session, job.id):
            settle(session, job.id, Decimal(0))
            repo.add_event(session, job.id, "cancelled", status=JobStatus.CANCELLED.value)
        elif not job.cancel_requested:
            repo.request_cancel(session, job.id)
            repo.add_event(session, job.id, "cancel_requested", status=job.status)
        session.flush()
        session.refresh(job)
        return job
