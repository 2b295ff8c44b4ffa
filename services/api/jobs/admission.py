"""Admitting a job: validate, price its plan, reserve and insert in one statement, publish.

The accepted path runs on the event loop: one statement (:func:`shared.jobs.repository.admit`:
the conditional reserve, the job, its ledger hold and its ``submitted`` event) on an asyncpg
connection outside any transaction, so it commits by itself and the tenant's budget row is
locked for that statement only; then one ``LPUSH`` of the first task
(:mod:`services.api.jobs.publish`). No thread-pool hop, no ORM round trip. A tenant with a
concurrent-jobs limit is the exception: its admission locks the budget rows (the key's, then the
tenant's), counts its running jobs and admits, in one transaction of three statements. The job
records the key that submitted it and is held in that key's budget row too, in the same
statement.
Submissions of one tenant that arrive while its admission statement is in flight are admitted
together in one statement after it (:mod:`services.api.jobs.lanes`).

A refusal writes nothing: a 402 leaves no reservation and queues nothing. The rare paths (the
first admission of a budget period, which creates its row; a refusal's figures; an idempotent
replay; a publish that failed) use the plain SQLAlchemy session in a worker thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any

import asyncpg
from starlette.concurrency import run_in_threadpool

from services.api.db import AsyncDatabase, async_database, unit_of_work
from services.api.errors import PayloadTooLarge, RateLimited
from services.api.jobs.errors import IdempotencyConflict
from services.api.jobs.lanes import Lane, lanes
from services.api.jobs.publish import Publisher
from services.api.jobs.schemas import JobCreate
from services.api.plans import (
    Template,
    cost_of,
    requested_plan,
    schedule_cache,
    shrunk_plans,
    template_for,
)
from services.api.settings import ApiSettings
from shared.budgets import BudgetExceeded, KeyBudgetExhausted, period_key, settle
from shared.budgets import key_repository as key_budgets
from shared.budgets import repository as budgets
from shared.budgets.service import quantize_up
from shared.classifier.schedules import Calibrated
from shared.costs import Plan, Profiles
from shared.db.models import Job, JobStatus, Tenant
from shared.errors import TransientError, ValidationFailed
from shared.jobs import repository as jobs
from shared.jobs import transition
from shared.jobs.service import locked
from shared.metrics import JOBS_SUBMITTED, RESERVED_DOLLARS, count_rejection, tenant_label
from shared.money import plain
from shared.prices import snapshot
from shared.tenants import Caller
from shared.tracing import job_trace

log = logging.getLogger(__name__)

IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:\-]{1,255}$")
ATTEMPTS = 3
# The database cannot be reached (or the connection died under the statement): a 503.
UNREACHABLE = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
)


@dataclass(frozen=True)
class Submission:
    job: Job
    created: bool
    shrunk: bool


def check_idempotency_key(key: str | None) -> str | None:
    if key is not None and not IDEMPOTENCY_KEY.match(key):
        raise ValidationFailed(
            "Idempotency-Key must be 1-255 characters of letters, digits and . _ : -",
            field="Idempotency-Key",
        )
    return key


def request_hash(body: JobCreate) -> str:
    """SHA-256 of the whole normalised request: what an idempotent replay must repeat."""
    # Following the answer live does not change the job: a replay may stream or not.
    fields = body.model_dump(mode="json", exclude={"stream_answer"})
    if body.max_cost is not None:  # 0.5 and 0.50 are one amount
        fields["max_cost"] = str(body.max_cost.normalize())
    normalised = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(normalised.encode()).hexdigest()


def check_request(settings: ApiSettings, body: JobCreate) -> None:
    """What the schema cannot check alone: limits from settings."""
    if len(body.question) > settings.max_question_chars:
        raise PayloadTooLarge(
            f"question is {len(body.question)} characters; the limit is "
            f"{settings.max_question_chars}",
            field="question",
        )
    if not body.question.strip():
        raise ValidationFailed("question must not be blank", field="question")
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


async def submit_job(
    settings: ApiSettings,
    tenant: Tenant,
    body: JobCreate,
    *,
    profiles: Profiles,
    publish: Publisher,
    idempotency_key: str | None = None,
    caller: Caller | None = None,
) -> Submission:
    """Admit (one statement, one transaction) and then publish; or refuse with nothing kept.
    The job records the ``caller``'s key, and is held against that key's budget too."""
    try:
        return await _submit(settings, tenant, body, profiles, publish, idempotency_key, caller)
    except (BudgetExceeded, RateLimited) as refused:
        count_rejection(refused.code, tenant.name, settings.metrics_tenants)
        raise


def _per_request_limit(tenant: Tenant, body: JobCreate) -> Decimal | None:
    limits = [x for x in (body.max_cost, tenant.max_cost_per_request) if x is not None]
    return min(limits) if limits else None


def _priced_plans(
    settings: ApiSettings,
    tenant: Tenant,
    body: JobCreate,
    profiles: Profiles,
    template: Template,
    calibrated: Calibrated | None,
) -> tuple[Plan, list[tuple[Plan, Decimal]]]:
    """The requested plan, and every plan admission may reserve (the request's first, then
    ever cheaper ones when shrinking is allowed) that fits the per-request maximum."""
    plan = requested_plan(
        settings,
        body.domain,
        body.policy,
        body.level,
        body.max_levels,
        body.max_answer_tokens,
        body.levels,
        calibrated,
    )
    plans = list(shrunk_plans(plan, settings.min_answer_tokens)) if body.allow_shrink else [plan]
    priced = [(p, cost_of(p, profiles, body.question, template)) for p in plans]
    limit = _per_request_limit(tenant, body)
    fitting = [(p, c) for p, c in priced if limit is None or c <= limit]
    if not fitting:
        raise BudgetExceeded(
            f"even the smallest plan costs {plain(priced[-1][1])}, above the per-request "
            f"maximum {plain(limit)}",
            cap=limit or Decimal(0),
            spent=Decimal(0),
            reserved=Decimal(0),
            requested=priced[-1][1],
            limit="max_cost",
            field="max_cost",
        )
    return plan, fitting


async def _submit(
    settings: ApiSettings,
    tenant: Tenant,
    body: JobCreate,
    profiles: Profiles,
    publish: Publisher,
    idempotency_key: str | None,
    caller: Caller | None,
) -> Submission:
    check_request(settings, body)
    digest = request_hash(body)
    template = template_for(body.domain, profiles)
    # The active classifier's schedule, from this process's copy: no statement of its own.
    calibrated = await schedule_cache(settings).current()
    plan, fitting = _priced_plans(settings, tenant, body, profiles, template, calibrated)
    trace_id, traceparent = job_trace(settings)
    # The row's columns as plain values: the job object is made once, from the admitted row.
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "tenant_id": tenant.id,
        "status": JobStatus.QUEUED.value,
        "domain": body.domain.value,
        "policy": body.policy.value,
        "question": body.question,
        "job_metadata": body.metadata,
        "webhook_url": str(body.webhook_url) if body.webhook_url else None,
        "idempotency_key": idempotency_key,
        "request_hash": digest,
        "fixed_level": plan.fixed_level,
        "prompt_version": template.version,
        "max_cost": body.max_cost,
        "trace_id": trace_id,
        "api_key_id": caller.key_id if caller is not None else None,
        # The prices its worst case was reserved at, which its calls will be charged at.
        "prices": snapshot(profiles),
        "stream_answer": body.stream_answer,
    }
    try:
        job = await _admit(settings, tenant, values, fitting, caller)
    except asyncpg.UniqueViolationError:
        if idempotency_key is None:
            raise
        # The key was used before (or by a concurrent submission that won); ours wrote nothing.
        existing = await run_in_threadpool(_by_idempotency_key, settings, tenant, idempotency_key)
        if existing is None:
            raise
        return _replay(existing, idempotency_key, digest, body)
    label = tenant_label(tenant.name, settings.metrics_tenants)
    JOBS_SUBMITTED.labels(job.policy, job.domain, label).inc()
    RESERVED_DOLLARS.inc(float(job.reserved_amount))
    try:
        await publish(job, traceparent)
    except Exception as exc:
        log.exception("could not publish job %s", job.id)
        await run_in_threadpool(_fail_unpublished, settings, job.id)
        raise TransientError("the job queue is unreachable; retry shortly") from exc
    return Submission(
        job,
        created=True,
        shrunk=list(job.levels) != list(plan.levels)
        or job.max_answer_tokens != plan.max_answer_tokens,
    )


def _by_idempotency_key(settings: ApiSettings, tenant: Tenant, key: str) -> Job | None:
    with unit_of_work(settings) as session:
        return jobs.job_by_idempotency_key(session, tenant.id, key)


def _replay(job: Job, key: str, digest: str, body: JobCreate) -> Submission:
    same = (
        job.request_hash == digest
        if job.request_hash is not None
        # Jobs admitted before requests were hashed: the fields they kept.
        else (job.question, job.domain, job.policy)
        == (body.question, body.domain.value, body.policy.value)
    )
    if not same:
        raise IdempotencyConflict(key)
    return Submission(job, created=False, shrunk=False)


async def _admit(
    settings: ApiSettings,
    tenant: Tenant,
    values: dict[str, Any],
    fitting: list[tuple[Plan, Decimal]],
    caller: Caller | None,
) -> Job:
    """Run admission's statement: the job as admitted with the plan it reserved, or raise why
    not."""
    key = period_key(tenant.budget_period)
    key_period = period_key(caller.budget_period) if caller is not None else None
    candidates = [
        jobs.Candidate(
            cost=quantize_up(cost), levels=list(p.levels), max_answer_tokens=p.max_answer_tokens
        )
        for p, cost in fitting
    ]
    database = async_database(settings)
    # A tenant's concurrent-jobs limit is counted under its rows' lock, one job at a time.
    lane = (
        Lane(tenant.id, key, values["api_key_id"], key_period)
        if tenant.max_concurrent_jobs is None
        else None
    )
    # Another attempt only after the period's budget row was created (its first admission), or
    # when the budget read after a refusal shows room made meanwhile; then the figures stand.
    for attempt in range(ATTEMPTS):
        ledger_id = uuid.uuid4()
        alone = partial(
            _admit_alone,
            database,
            values,
            key,
            candidates,
            ledger_id,
            tenant.max_concurrent_jobs,
            key_period,
        )
        try:
            if lane is not None and attempt == 0:
                together = jobs.Together(values, candidates[0], ledger_id)
                admitted = await lanes(database).admit(lane, together, alone)
            else:
                admitted = await alone()
        except UNREACHABLE as exc:
            raise TransientError("the database is unreachable; retry shortly") from exc
        if isinstance(admitted, jobs.AtLimit):
            raise RateLimited(
                f"at most {tenant.max_concurrent_jobs} jobs may run at once; wait for one to "
                "finish",
                retry_after_s=settings.concurrency_retry_after_s,
                limit="concurrent_jobs",
            )
        if admitted is not None:
            chosen = candidates[admitted.choice]
            return jobs.loaded_job(
                {
                    **values,
                    "levels": chosen.levels,
                    "max_answer_tokens": chosen.max_answer_tokens,
                    "budget_id": admitted.budget_id,
                    "key_budget_id": admitted.key_budget_id,
                    "reserved_amount": admitted.reserved,
                    "created_at": admitted.created_at,
                    "updated_at": admitted.created_at,
                }
            )
        last = attempt == ATTEMPTS - 1
        refusal = await run_in_threadpool(
            _refusal,
            settings,
            tenant,
            key,
            candidates[0].cost,
            candidates[-1].cost,
            last,
            caller,
        )
        if refusal is not None:
            raise refusal
    raise TransientError("the tenant's budget could not be read; retry shortly")


async def _admit_alone(
    database: AsyncDatabase,
    values: dict[str, Any],
    key: str,
    candidates: list[jobs.Candidate],
    ledger_id: uuid.UUID,
    max_active: int | None,
    key_period: str | None,
) -> jobs.Admitted | jobs.AtLimit | None:
    async with database.connection() as connection:
        return await jobs.admit(
            connection,
            job=values,
            period_key=key,
            candidates=candidates,
            ledger_id=ledger_id,
            max_active=max_active,
            key_period=key_period,
        )


def _refusal(
    settings: ApiSettings,
    tenant: Tenant,
    key: str,
    requested: Decimal,
    smallest: Decimal,
    last: bool,
    caller: Caller | None = None,
) -> BudgetExceeded | None:
    """Why nothing fitted, with the figures of the budget that refused (the tenant's, else the
    key's); None when admission should try again: a period's row (the tenant's or the key's)
    did not exist yet (rows are made on first use, here), or, unless this was the ``last``
    attempt, the smallest plan fits the rows as they are now (room released by a concurrent
    settlement meanwhile)."""
    with unit_of_work(settings) as session:
        current = budgets.get_budget(session, tenant.id, key)
        if current is None:
            budgets.ensure_budget(session, tenant.id, key, tenant.budget_cap)
        key_row = None
        if caller is not None:
            key_period = period_key(caller.budget_period)
            key_row = key_budgets.get_key_budget(session, caller.key_id, key_period)
            if key_row is None:
                key_budgets.ensure_key_budget(session, caller.key_id, key_period, caller.budget_cap)
                return None
        if current is None:
            return None
    tenant_fits = current.spent + current.reserved + smallest <= current.cap
    key_fits = (
        key_row is None
        or key_row.cap is None
        or key_row.spent + key_row.reserved + smallest <= key_row.cap
    )
    if not last and tenant_fits and key_fits:
        return None
    if not tenant_fits or key_row is None or key_row.cap is None:
        return BudgetExceeded(
            f"the job's worst-case cost {plain(requested)} does not fit the "
            f"{tenant.budget_period} budget {key}: cap {plain(current.cap)}, spent "
            f"{plain(current.spent)}, reserved {plain(current.reserved)}; raise the cap or "
            "lower max_cost / levels",
            cap=current.cap,
            spent=current.spent,
            reserved=current.reserved,
            requested=requested,
            period=key,
        )
    return KeyBudgetExhausted(
        f"the job's worst-case cost {plain(requested)} does not fit this API key's "
        f"budget {key_row.period_key}: cap {plain(key_row.cap)}, spent {plain(key_row.spent)}, "
        f"reserved {plain(key_row.reserved)}; raise the key's cap or lower max_cost / levels",
        cap=key_row.cap,
        spent=key_row.spent,
        reserved=key_row.reserved,
        requested=requested,
        limit="key_cap",
        period=key_row.period_key,
    )


def _fail_unpublished(settings: ApiSettings, job_id: uuid.UUID) -> None:
    """The job's first task could not be sent: fail it through the state machine (so it has
    its event) and release its whole hold."""
    with unit_of_work(settings) as session:
        job = locked(session, job_id)
        message = "the job queue was unreachable"
        transition(session, job, JobStatus.FAILED, error_code="publish_failed", message=message)
        job.error_code = "publish_failed"
        job.error_message = message
        job.finished_at = datetime.now(UTC)
        settle(session, job_id, Decimal(0))
