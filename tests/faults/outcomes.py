"""What a user needs after a fault, read from the stack's database: every job ended once, with
its real outcome, charged once, and the books balancing with no reservation left behind."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from shared.budgets import verify_ledger
from shared.db.models import Budget, Job, JobEvent, LedgerEntry, ModelCall
from shared.db.session import unit_of_work
from tests.faults.stack import STEPS, wait_until

TERMINAL = ("succeeded", "failed", "cancelled", "rejected")
# Causes an outage or a crash may never leave as a job's outcome: they are the machinery
# giving up, not the job's real result.
MACHINERY_CAUSES = ("stuck", "internal_error", "publish_failed")


def jobs(database_url: str, job_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Job]:
    with unit_of_work(database_url) as session:
        rows = session.scalars(select(Job).where(Job.id.in_(list(job_ids)))).all()
        for row in rows:
            session.expunge(row)
    return {row.id: row for row in rows}


def settled(database_url: str, job_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    with unit_of_work(database_url) as session:
        return set(
            session.scalars(
                select(LedgerEntry.job_id).where(
                    LedgerEntry.job_id.in_(list(job_ids)), LedgerEntry.kind == "settle"
                )
            )
        )


def wait_ended(
    database_url: str, job_ids: list[uuid.UUID], timeout_s: float
) -> dict[uuid.UUID, Job]:
    """The jobs once every one of them is terminal and settled (a failed job is settled after
    it failed); fails naming the ones still live."""
    if not job_ids:
        return {}

    def ended() -> dict[uuid.UUID, Job] | None:
        try:
            # Settled first, the rows after: a settlement committed between the two reads would
            # otherwise pair its ledger with the row (its cost) from before it.
            all_settled = settled(database_url, job_ids) == set(job_ids)
            rows = jobs(database_url, job_ids)
        except OperationalError:
            # This observer's pooled connection died with a restarted server (it is pinged only
            # after idling, as the workers' are): the next poll reconnects.
            return None
        done = all(row.status in TERMINAL for row in rows.values())
        return rows if done and all_settled else None

    try:
        ended_jobs: dict[uuid.UUID, Job] = wait_until(
            "every job ended", ended, timeout_s, every_s=0.25
        )
        return ended_jobs
    except AssertionError:
        done = settled(database_url, job_ids)
        live = {str(i): j.status for i, j in jobs(database_url, job_ids).items() if i not in done}
        raise AssertionError(f"jobs not ended and settled after {timeout_s} s: {live}") from None


def assert_succeeded_once(database_url: str, job: Job) -> None:
    """Succeeded with an answer, through each step once, ended and settled once, charged the
    sum of its recorded calls once."""
    assert job.status == "succeeded", (job.status, job.error_code, job.error_message)
    assert job.answer
    with unit_of_work(database_url) as session:
        steps = list(
            session.scalars(
                select(ModelCall.step)
                .where(ModelCall.job_id == job.id)
                .order_by(ModelCall.created_at)
            )
        )
        ended = session.scalar(
            select(func.count()).where(
                JobEvent.job_id == job.id, JobEvent.kind == "status", JobEvent.status == "succeeded"
            )
        )
        settlements = session.scalar(
            select(func.count()).where(JobEvent.job_id == job.id, JobEvent.kind == "settled")
        )
    assert steps == STEPS, steps
    assert (ended, settlements) == (1, 1)
    assert_charged_once(database_url, job)


def assert_charged_once(database_url: str, job: Job) -> None:
    """One hold, one settlement of exactly the recorded calls' cost, the rest released."""
    with unit_of_work(database_url) as session:
        entries = session.execute(
            select(LedgerEntry.kind, LedgerEntry.amount).where(LedgerEntry.job_id == job.id)
        ).all()
        calls = session.scalar(select(func.sum(ModelCall.cost)).where(ModelCall.job_id == job.id))
    kinds = Counter(kind for kind, _ in entries)
    assert kinds == {"reserve": 1, "settle": 1, "release": 1}, kinds
    money = {kind: amount for kind, amount in entries}
    assert money["settle"] == Decimal(calls or 0) == job.cost
    assert money["settle"] + money["release"] == money["reserve"] == job.reserved_amount


def assert_books_balance(database_url: str, tenant_id: uuid.UUID) -> None:
    """``tandem ledger verify`` finds nothing wrong with the tenant, whose budget holds no
    reservation any more and has spent exactly what its jobs cost."""
    with unit_of_work(database_url) as session:
        job_ids = [
            str(i) for i in session.scalars(select(Job.id).where(Job.tenant_id == tenant_id))
        ]
        problems = [
            p
            for p in verify_ledger(session)
            if str(tenant_id) in p.subject or any(i in p.subject for i in job_ids)
        ]
        reserved, spent = session.execute(
            select(func.sum(Budget.reserved), func.sum(Budget.spent)).where(
                Budget.tenant_id == tenant_id
            )
        ).one()
        cost = session.scalar(select(func.sum(Job.cost)).where(Job.tenant_id == tenant_id))
    assert problems == [], problems
    assert reserved == 0, f"{reserved} still reserved"
    assert spent == cost
