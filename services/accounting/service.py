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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.budgets import settle
from shared.db.models import JobStatus
from shared.db.session import unit_of_work
from shared.jobs import repository as repo
from shared.jobs.flow import NextTask, settle_task
from shared.jobs.service import fail_job, locked
from shared.jobs.states import add_event, transition
from shared.webhooks import deliver_webhook

log = logging.getLogger(__name__)

SETTLEABLE = frozenset({JobStatus.SETTLING, JobStatus.FAILED, JobStatus.CANCELLED})


def settle_job(job_id: uuid.UUID | str) -> list[NextTask]:
    """Settle once; the job's webhook goes out after the commit of the settlement that made it
    final (a redelivered settle task sends nothing again)."""
    fresh = False
    with unit_of_work() as session:
        job = locked(session, job_id)
        status = JobStatus(job.status)
        if status not in SETTLEABLE:
            return []
        spent = repo.spent(session, job.id)
        if job.budget_id is not None:
            settlement = settle(session, job.id, spent)
            fresh = not settlement.already_settled
            charged, released = settlement.charged, settlement.released
        else:  # a job admitted without a budget (internal runs): record the cost only
            fresh = status is JobStatus.SETTLING
            job.cost = spent
            charged, released = spent, job.reserved_amount
        if fresh:
            for call in repo.calls(session, job.id):
                repo.add_usage(session, job, call)
            repo.add_scores(session, job)
            add_event(session, job, "settled", charged=str(charged), released=str(released))
        if status is JobStatus.SETTLING:
            transition(session, job, JobStatus.SUCCEEDED)
            job.finished_at = datetime.now(UTC)
        has_webhook = bool(job.webhook_url)
    if fresh and has_webhook:
        deliver_webhook(job_id)
    return []


@dataclass(frozen=True)
class SweepResult:
    failed: list[str]
    resettled: list[str]


def sweep(stuck_after_s: int) -> tuple[SweepResult, list[NextTask]]:
    """Fail jobs nobody has moved for ``stuck_after_s`` and (re)settle what is unsettled."""
    before = datetime.now(UTC) - timedelta(seconds=stuck_after_s)
    with unit_of_work() as session:
        stale = repo.stale_jobs(session, before)
        unsettled = repo.unsettled_finished_jobs(session)
    following: list[NextTask] = []
    failed: list[str] = []
    resettled: list[str] = []
    for job_id in stale:
        with unit_of_work() as session:
            status = JobStatus(locked(session, job_id).status)
        if status is JobStatus.SETTLING:
            following.append(settle_task(job_id))
            resettled.append(str(job_id))
            continue
        tasks = fail_job(job_id, "stuck", f"no progress for {stuck_after_s} s in {status.value}")
        if tasks:
            failed.append(str(job_id))
            following.extend(tasks)
    for job_id in unsettled:
        following.append(settle_task(job_id))
        resettled.append(str(job_id))
    if failed or resettled:
        log.warning("sweeper failed %d stuck jobs, resettled %d", len(failed), len(resettled))
    return SweepResult(failed, resettled), following
