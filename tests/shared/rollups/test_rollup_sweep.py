"""The sweep's part: jobs that ended without a settlement adding them are rolled up later,
once; jobs still waiting for their settlement, and live jobs, are left alone."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from shared.db.models import Budget, Job, LedgerEntry, LedgerKind, OutcomeDaily
from shared.db.session import unit_of_work
from shared.rollups.service import roll_up_ended_jobs
from shared.tenants import create_tenant

ENDED = datetime(2023, 8, 9, 10, tzinfo=UTC)


@pytest.mark.usefixtures("database_url")  # unit_of_work() reads the test database's URL
def test_ended_jobs_without_a_settlement_are_rolled_up_once() -> None:
    with unit_of_work() as session:
        tenant = create_tenant(session, f"sweep-{uuid.uuid4().hex[:10]}")
        budget = Budget(tenant_id=tenant.id, period_key="2023-08", cap=Decimal(1))
        session.add(budget)
        session.flush()

        def job(status: str, *, budget_id: uuid.UUID | None = None) -> Job:
            row = Job(
                id=uuid.uuid4(),
                tenant_id=tenant.id,
                status=status,
                domain="math",
                policy="tandem",
                question="q",
                levels=[0],
                max_answer_tokens=8,
                prompt_version="test",
                budget_id=budget_id,
                created_at=ENDED,
                updated_at=ENDED,
            )
            session.add(row)
            return row

        cancelled_by_api = job("cancelled", budget_id=budget.id)  # settled with the cancel
        failed_unbudgeted = job("failed")
        awaiting_settlement = job("failed", budget_id=budget.id)
        live = job("executing")
        session.flush()
        # A hold, its settlement and its release, as the API's cancel writes them: the books
        # this test leaves in the shared test database must still verify.
        for kind in (LedgerKind.RESERVE, LedgerKind.SETTLE, LedgerKind.RELEASE):
            session.add(
                LedgerEntry(
                    tenant_id=tenant.id,
                    budget_id=budget.id,
                    job_id=cancelled_by_api.id,
                    kind=kind.value,
                    amount=Decimal(0),
                )
            )
        ids = {j.id: j for j in (cancelled_by_api, failed_unbudgeted, awaiting_settlement, live)}
        # updated_at is set by the database on every write: make them old.
        for row in ids.values():
            row.updated_at = ENDED

    later = ENDED + timedelta(hours=1)
    while roll_up_ended_jobs(later):  # every such job in this database, this test's included
        pass
    assert roll_up_ended_jobs(later) == 0

    with unit_of_work() as session:
        rolled = dict(session.execute(select(Job.id, Job.rolled_up).where(Job.id.in_(ids))).all())
        counted = dict(
            session.execute(
                select(OutcomeDaily.status, OutcomeDaily.jobs).where(
                    OutcomeDaily.tenant_id == tenant.id
                )
            ).all()
        )
    assert rolled == {
        cancelled_by_api.id: True,
        failed_unbudgeted.id: True,
        awaiting_settlement.id: False,
        live.id: False,
    }
    assert counted == {"cancelled": 1, "failed": 1}
