"""Accounting: settle a finished job's reservation, roll usage and scores up per hour, sweep
stuck jobs.

Each call's FLOPs and money were computed with :func:`shared.costs.call_cost` when the call
was recorded; settlement charges their sum through :func:`shared.budgets.settle` (idempotent
through the ledger's unique (job, kind)), and the roll-ups are added in the same transaction
only when that settlement is new, so a redelivered settle task charges and counts nothing twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache

from services.accounting import shadow
from services.accounting.settings import get_accounting_settings
from shared.budgets import settle
from shared.db.models import JobStatus
from shared.db.session import unit_of_work
from shared.errors import NotFoundError
from shared.jobs import repository as repo
from shared.jobs.flow import NextTask, first_task, next_task, settle_task
from shared.jobs.service import locked, mark_failed
from shared.jobs.states import add_event, transition
from shared.logging import bind
from shared.metrics import SWEEPS, SWEPT_JOBS
from shared.money import plain
from shared.rollups.repository import add_settled_job
from shared.rollups.service import roll_up_ended_jobs
from shared.tasks import Queue
from shared.webhooks import deliver_task, outbox_task

log = logging.getLogger(__name__)

SETTLEABLE = frozenset({JobStatus.SETTLING, JobStatus.FAILED, JobStatus.CANCELLED})


def settle_job(job_id: uuid.UUID | str) -> list[NextTask]:
    """Settle once; the job's webhook is written to the outbox in the settlement's transaction
    and its delivery task published after the commit (a redelivered settle adds nothing). A
    succeeded tandem job in the measured share gets its shadow run here too
    (:mod:`services.accounting.shadow`)."""
    fresh = False
    following: list[NextTask] = []
    with unit_of_work() as session:
        state = repo.lock_settling(session, uuid.UUID(str(job_id)))
        if state is None:
            raise NotFoundError(f"job {job_id} not found", field="job_id")
        job, spent = state
        bind(tenant_id=job.tenant_id)
        status = JobStatus(job.status)
        if status not in SETTLEABLE:
            return []
        if job.budget_id is not None:
            settlement = settle(session, job.id, spent, locked=job)
            fresh = not settlement.already_settled
            charged, released = settlement.charged, settlement.released
            # Budget alerts this charge crossed: their webhooks are in the outbox already.
            following.extend(deliver_task(delivery) for delivery in settlement.deliveries)
        else:  # a job admitted without a budget (internal runs): record the cost only
            fresh = status is JobStatus.SETTLING
            job.cost = spent
            charged, released = spent, job.reserved_amount
        if fresh:
            add_event(session, job, "settled", charged=plain(charged), released=plain(released))
        if status is JobStatus.SETTLING:
            transition(session, job, JobStatus.SUCCEEDED)
        repo.save_state(session, job)  # its cost and final status, one UPDATE
        if fresh:  # after the final status: the roll-ups count the job as it ended
            add_settled_job(session, job)
        if fresh:
            following.extend(outbox_task(session, job))
        if fresh and shadow.wanted(job, get_accounting_settings()):
            spawned = shadow.spawn(session, job, get_accounting_settings())
            if spawned is not None:
                following.append(first_task(spawned))
    return following


@dataclass(frozen=True)
class SweepResult:
    failed: list[str]
    resettled: list[str]
    reannounced: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # behind a backlog, or retrying


REANNOUNCE_LIMIT = 2  # a lost job's step is sent again this often before the job is given up
SWEEP_PAGE = 100  # stale jobs read per statement
SWEEP_MOST = 10_000  # stale jobs one sweep looks at; the rest wait for the next one


@dataclass(frozen=True)
class _Horizon:
    now: datetime
    stuck_after_s: int

    @property
    def before(self) -> datetime:
        """Untouched since before this, a live job is stale."""
        return self.now - timedelta(seconds=self.stuck_after_s)


def sweep(
    stuck_after_s: int, backlog: Callable[[Queue], int] = lambda _: 0
) -> tuple[SweepResult, list[NextTask]]:
    """Look at live jobs nobody has moved for ``stuck_after_s`` and (re)settle what is
    unsettled.

    A job untouched that long is, in this order: retrying (a transient failure was recorded
    within the horizon: left alone); queued (its step's queue holds messages, waiting or
    delivered and not acked (``backlog``): left alone for one more horizon, then its step is
    sent again, since its message may be lost all the same); or lost (nothing of its queue on
    the broker: its message expired, or its successor was never published during a broker
    outage): its step is sent again. A job that stays lost through :data:`REANNOUNCE_LIMIT`
    announcements since it last moved fails, keeping the cause of its last retry; a job behind
    a backlog does not, however long the backlog lasts.

    Every stale job is looked at, page after page (up to :data:`SWEEP_MOST`): after a backlog
    longer than the messages' expiry, thousands of jobs may be waiting for their step to be
    sent again, and the workers for them.
    """
    horizon = _Horizon(datetime.now(UTC), stuck_after_s)
    following: list[NextTask] = []
    result = SweepResult([], [])
    depth = cache(backlog)  # one look at each queue per sweep
    with unit_of_work() as session:  # before the sweep fails any: it settles those itself
        unsettled = repo.unsettled_finished_jobs(session)
    after: tuple[datetime, uuid.UUID] | None = None
    for _ in range(SWEEP_MOST // SWEEP_PAGE):
        with unit_of_work() as session:
            page = repo.stale_jobs(session, horizon.before, after=after, limit=SWEEP_PAGE)
        for job_id, _updated_at in page:
            following += _look_at(job_id, horizon, depth, result)
        if len(page) < SWEEP_PAGE:
            break
        after = page[-1][1], page[-1][0]
    for job_id in unsettled:
        following.append(settle_task(job_id))
        result.resettled.append(str(job_id))
    roll_up_ended_jobs(horizon.before)  # jobs no settlement added: into the reports' roll-ups
    swept = (
        ("reannounced", result.reannounced),
        ("failed", result.failed),
        ("resettled", result.resettled),
    )
    for action, jobs in swept:
        SWEPT_JOBS.labels(action).inc(len(jobs))
    SWEEPS.inc()
    if result.failed or result.resettled or result.reannounced:
        log.warning(
            "sweeper: %d jobs failed, %d resettled, %d steps announced again, %d waiting",
            len(result.failed),
            len(result.resettled),
            len(result.reannounced),
            len(result.waiting),
        )
    return result, following


def _look_at(
    job_id: uuid.UUID, horizon: _Horizon, depth: Callable[[Queue], int], result: SweepResult
) -> list[NextTask]:
    """One stale job, in its own transaction (see :func:`sweep`); what to publish for it."""
    with unit_of_work() as session:
        job = locked(session, job_id)
        status = JobStatus(job.status)
        waits_for = next_task(job)
        if waits_for is None:
            return []
        if status is JobStatus.SETTLING:
            result.resettled.append(str(job_id))
            return [waits_for]
        retry = repo.last_retry(session, job.id)
        if retry is not None and retry.created_at >= horizon.before:
            result.waiting.append(str(job_id))
            return []
        backlog = depth(waits_for.name.queue)
        recent = job.updated_at >= horizon.before - timedelta(seconds=horizon.stuck_after_s)
        if recent and backlog > 0:
            result.waiting.append(str(job_id))
            return []
        lost = backlog == 0
        if not lost or repo.reannounced_since_progress(session, job.id) < REANNOUNCE_LIMIT:
            add_event(session, job, repo.REANNOUNCED, task=waits_for.name.value, backlog=backlog)
            job.updated_at = horizon.now  # one more horizon to make progress
            result.reannounced.append(str(job_id))
            return [waits_for]
        code, cause = "stuck", f"no progress for {horizon.stuck_after_s} s in {status.value}"
        if retry is not None:  # what it last failed on is why it is stuck
            code = str(retry.data.get("code") or code)
            cause += f" after retries; last error: {retry.data.get('error')}"
        mark_failed(session, job, code, cause)
    result.failed.append(str(job_id))
    return [settle_task(job_id)]
