"""Accounting's settlement and sweeper as plain functions on real Postgres."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from sqlalchemy import event, select, update

from services.accounting import service as accounting
from services.executor import service as executor
from shared.db.models import Job, LedgerEntry, ModelCall, Policy
from shared.db.session import get_engine, unit_of_work
from tests.services.pipeline.support import history, job_row, make_tenant, submit

QUESTION = "What is 2 + 40?"


def ledger(job_id: uuid.UUID) -> dict[str, Decimal]:
    with unit_of_work() as session:
        rows = session.execute(
            select(LedgerEntry.kind, LedgerEntry.amount).where(LedgerEntry.job_id == job_id)
        ).all()
    return {kind: amount for kind, amount in rows}


def cost_of_calls(job_id: uuid.UUID) -> Decimal:
    with unit_of_work() as session:
        return sum(
            session.scalars(select(ModelCall.cost).where(ModelCall.job_id == job_id)), Decimal(0)
        )


@pytest.mark.usefixtures("sim_env")
def test_settlement_charges_the_calls_once_and_releases_the_rest() -> None:
    job_id = submit(None, make_tenant(), QUESTION, policy=Policy.SLM_ONLY, start=False)
    executor.execute(job_id)
    assert accounting.settle_job(job_id) == []
    job = job_row(job_id)
    assert job.status == "succeeded" and job.finished_at is not None
    money = ledger(job_id)
    assert money["settle"] == job.cost == cost_of_calls(job_id) > 0
    assert money["settle"] + money["release"] == money["reserve"] == job.reserved_amount
    events = history(job_id)
    assert events[-2:] == [("settled", "settling", None), ("status", "succeeded", None)]
    assert accounting.settle_job(job_id) == []  # redelivered: nothing more
    assert ledger(job_id) == money and history(job_id) == events


@pytest.mark.usefixtures("sim_env")
def test_settlement_reads_the_job_once_and_writes_it_once() -> None:
    """The lock reads all settlement needs (a column read later would be a statement of its
    own, or nothing at all on a job held outside the session), and its cost and final status
    go out in one UPDATE."""
    job_id = submit(None, make_tenant(), QUESTION, policy=Policy.SLM_ONLY, start=False)
    executor.execute(job_id)
    reads: list[str] = []
    updates: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *_: object) -> None:
        if statement.startswith("SELECT jobs."):  # the lock, or a column loaded on its own
            reads.append(statement)
        if statement.startswith("UPDATE jobs"):
            updates.append(statement)

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert accounting.settle_job(job_id) == []
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len(reads) == 1 and "FOR UPDATE" in reads[0], reads
    assert len(updates) == 1, updates
    job = job_row(job_id)
    assert job.status == "succeeded" and job.cost == cost_of_calls(job_id) > 0


def test_a_job_still_running_is_not_settled() -> None:
    job_id = submit(None, make_tenant(), QUESTION, start=False)
    assert accounting.settle_job(job_id) == []
    assert set(ledger(job_id)) == {"reserve"} and job_row(job_id).status == "queued"


def test_the_sweeper_settles_a_finished_job_left_unsettled() -> None:
    left = submit(None, make_tenant(), QUESTION, start=False)
    with unit_of_work() as session:
        session.execute(update(Job).where(Job.id == left).values(status="cancelled"))
    result, following = accounting.sweep(stuck_after_s=3600)
    assert str(left) in result.resettled
    assert {t.kwargs["job_id"] for t in following} >= {str(left)}
    accounting.settle_job(left)
    assert ledger(left)["release"] == job_row(left).reserved_amount
    result, _ = accounting.sweep(stuck_after_s=3600)
    assert str(left) not in result.resettled
