"""One tenant's concurrent submissions admitted together (services.api.jobs.lanes): a burst
goes in few statements with every job, hold and event written; a batch that does not all fit,
or whose statement fails, is admitted one by one with exactly the outcomes that gives; a cap is
never passed."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select, update

from services.api.db import async_database
from services.api.jobs import admission
from services.api.jobs.lanes import Lane, Lanes
from services.api.jobs.schemas import JobCreate
from services.api.plans import load_profiles
from services.api.settings import ApiSettings
from shared.budgets import BudgetExceeded, KeyBudgetExhausted, period_key, verify_ledger
from shared.db.models import Budget, Job, JobEvent, KeyBudget, LedgerEntry, Tenant
from shared.db.session import unit_of_work
from shared.jobs import repository as jobs
from shared.tenants import Caller, caller_of, create_key, create_tenant

BODY = JobCreate.model_validate(
    {"question": "What is 2+2?", "domain": "math", "allow_shrink": False}
)


@pytest.fixture(autouse=True)
async def pool_closed(api_settings: ApiSettings) -> AsyncIterator[None]:
    yield
    await async_database(api_settings).close()


def made_tenant(cap: str = "10") -> Tenant:
    with unit_of_work() as session:
        tenant = create_tenant(session, f"lane-{uuid.uuid4().hex[:8]}", budget_cap=Decimal(cap))
        session.refresh(tenant)
    return tenant


def batches(outcome: str) -> tuple[float, float]:
    """(batches, jobs in them) admitted with ``outcome`` so far in this process."""
    labels = {"outcome": outcome}
    count = REGISTRY.get_sample_value("tandem_admission_batch_size_count", labels) or 0.0
    total = REGISTRY.get_sample_value("tandem_admission_batch_size_sum", labels) or 0.0
    return count, total


async def burst(
    settings: ApiSettings,
    tenant: Tenant,
    n: int,
    *,
    caller: Caller | None = None,
    body: JobCreate = BODY,
    idempotency_key: str | None = None,
) -> tuple[list[admission.Submission], list[BaseException], list[Job]]:
    """``n`` submissions at once: (admitted, refused, the jobs sent to the queue)."""
    sent: list[Job] = []

    async def publish(job: Job, traceparent: str) -> None:
        sent.append(job)

    outcomes: list[Any] = await asyncio.gather(
        *(
            admission.submit_job(
                settings,
                tenant,
                body,
                profiles=load_profiles(),
                publish=publish,
                idempotency_key=idempotency_key,
                caller=caller,
            )
            for _ in range(n)
        ),
        return_exceptions=True,
    )
    admitted = [o for o in outcomes if isinstance(o, admission.Submission)]
    refused = [o for o in outcomes if not isinstance(o, admission.Submission)]
    return admitted, refused, sent


async def one_job_cost(
    settings: ApiSettings, tenant: Tenant, caller: Caller | None = None
) -> Decimal:
    """Admit one job (it makes the period's budget rows) and return what it reserved."""
    admitted, refused, _ = await burst(settings, tenant, 1, caller=caller)
    assert not refused, refused
    return admitted[0].job.reserved_amount


def check_books(tenant: Tenant, jobs: int) -> Decimal:
    """Each job has one hold equal to its reservation and one ``submitted`` event; the
    budget holds their sum; the ledger adds up. Returns what is reserved."""
    with unit_of_work() as session:
        rows = session.scalars(select(Job).where(Job.tenant_id == tenant.id)).all()
        assert len(rows) == jobs
        for job in rows:
            holds = session.scalars(
                select(LedgerEntry.amount).where(LedgerEntry.job_id == job.id)
            ).all()
            assert holds == [job.reserved_amount]
            kinds = session.scalars(select(JobEvent.kind).where(JobEvent.job_id == job.id)).all()
            assert kinds == ["submitted"]
        budget = session.scalars(select(Budget).where(Budget.tenant_id == tenant.id)).one()
        assert budget.reserved == sum((job.reserved_amount for job in rows), Decimal(0))
        assert budget.reserved <= budget.cap
        assert not verify_ledger(session)
        return budget.reserved


async def test_a_burst_of_one_tenant_goes_in_few_statements(api_settings: ApiSettings) -> None:
    tenant = made_tenant()
    await one_job_cost(api_settings, tenant)
    before = batches("together")
    admitted, refused, sent = await burst(api_settings, tenant, 20)
    after = batches("together")
    assert not refused, refused
    assert len(admitted) == 20 and len({s.job.id for s in admitted}) == 20
    assert {j.id for j in sent} == {s.job.id for s in admitted}
    # The first ran alone; the rest waited for it and went in one or a few statements.
    assert after[0] - before[0] <= 5 and after[1] - before[1] >= 10, (before, after)
    check_books(tenant, 21)
    for submission in admitted:
        assert submission.job.created_at is not None and submission.job.budget_id is not None


async def test_a_burst_that_does_not_all_fit_is_admitted_one_by_one(
    api_settings: ApiSettings,
) -> None:
    tenant = made_tenant()
    cost = await one_job_cost(api_settings, tenant)
    with unit_of_work() as session:  # room for exactly four more jobs
        session.execute(update(Budget).where(Budget.tenant_id == tenant.id).values(cap=cost * 5))
    before = batches("alone")
    admitted, refused, sent = await burst(api_settings, tenant, 12)
    assert batches("alone")[0] > before[0]  # a batch went back, to be admitted one by one
    assert len(admitted) == 4 and len(sent) == 4
    assert len(refused) == 8 and all(isinstance(r, BudgetExceeded) for r in refused), refused
    assert check_books(tenant, 5) == cost * 5


async def test_a_burst_on_one_key_keeps_to_the_keys_cap(api_settings: ApiSettings) -> None:
    tenant = made_tenant()
    with unit_of_work() as session:
        key = create_key(session, tenant, "ci", budget_cap=Decimal(1)).key
        caller = caller_of(key, tenant)
    cost = await one_job_cost(api_settings, tenant, caller)
    with unit_of_work() as session:  # the key has room for exactly three more jobs
        session.execute(
            update(KeyBudget)
            .where(KeyBudget.api_key_id == key.id)
            .values(cap=KeyBudget.reserved + cost * 3)
        )
    admitted, refused, _ = await burst(api_settings, tenant, 10, caller=caller)
    assert len(admitted) == 3
    assert len(refused) == 7 and all(isinstance(r, KeyBudgetExhausted) for r in refused), refused
    check_books(tenant, 4)
    with unit_of_work() as session:
        row = session.scalars(
            select(KeyBudget).where(
                KeyBudget.api_key_id == key.id,
                KeyBudget.period_key == period_key(tenant.budget_period),
            )
        ).one()
        assert row.reserved == cost * 4 == row.cap
        keyed = session.scalar(
            select(func.count())
            .select_from(Job)
            .where(Job.api_key_id == key.id, Job.key_budget_id == row.id)
        )
        assert keyed == 4


async def test_a_first_burst_makes_its_budget_rows_once(api_settings: ApiSettings) -> None:
    """No row yet for the period, the tenant's or the key's: the batch finds none and each
    submission is admitted alone, making the rows on the way."""
    tenant = made_tenant()
    with unit_of_work() as session:
        key = create_key(session, tenant, "ci", budget_cap=Decimal(5)).key
        caller = caller_of(key, tenant)
    admitted, refused, sent = await burst(api_settings, tenant, 10, caller=caller)
    assert not refused, refused
    assert len(admitted) == 10 and len(sent) == 10
    reserved = check_books(tenant, 10)
    with unit_of_work() as session:
        rows = session.scalars(select(KeyBudget).where(KeyBudget.api_key_id == key.id)).all()
        assert len(rows) == 1 and rows[0].reserved == reserved


async def test_one_idempotency_key_in_a_burst_makes_one_job(api_settings: ApiSettings) -> None:
    """The batch's statement fails on the key's second use and writes nothing; one by one,
    the first admits and the others replay it."""
    tenant = made_tenant()
    await one_job_cost(api_settings, tenant)
    admitted, refused, sent = await burst(api_settings, tenant, 6, idempotency_key="same-1")
    assert not refused, refused
    assert len({s.job.id for s in admitted}) == 1
    assert sum(s.created for s in admitted) == 1 and len(sent) == 1
    check_books(tenant, 2)


class FailingDatabase:
    """A database whose connection, once checked out, fails every statement with ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        error = self.error

        class Connection:
            async def fetch(self, *args: Any) -> Any:
                raise error

        yield Connection()


def together(tenant_id: uuid.UUID) -> jobs.Together:
    # Every column admit_together reads; the failing connection never sees them.
    values: dict[str, Any] = dict.fromkeys(
        [
            "status",
            "domain",
            "policy",
            "question",
            "webhook_url",
            "idempotency_key",
            "request_hash",
            "fixed_level",
            "prompt_version",
            "max_cost",
            "trace_id",
        ]
    )
    values.update(id=uuid.uuid4(), tenant_id=tenant_id, api_key_id=None, job_metadata={})
    candidate = jobs.Candidate(cost=Decimal(1), levels=[0], max_answer_tokens=8)
    return jobs.Together(values, candidate, uuid.uuid4())


async def waiter_outcome(error: Exception) -> Any:
    """What a submission that waited behind a lane's statement gets when its batch's
    statement raises ``error``: the alone path's answer, or the error."""
    lane = Lane(uuid.uuid4(), "2026-12", None, None)
    lanes = Lanes(FailingDatabase(error))  # type: ignore[arg-type]
    release = asyncio.Event()

    async def first() -> str:
        await release.wait()
        return "first, alone"

    async def second() -> str:
        return "second, alone"

    leader = asyncio.create_task(lanes.admit(lane, together(lane.tenant_id), first))
    await asyncio.sleep(0)
    follower = asyncio.create_task(lanes.admit(lane, together(lane.tenant_id), second))
    await asyncio.sleep(0)
    release.set()
    assert await leader == "first, alone"
    outcome = await asyncio.gather(follower, return_exceptions=True)
    assert not lanes._busy  # the lane is idle again
    return outcome[0]


async def test_a_batch_the_server_refused_is_admitted_alone() -> None:
    refused = asyncpg.UniqueViolationError("duplicate key value")
    assert await waiter_outcome(refused) == "second, alone"


@pytest.mark.parametrize(
    "error",
    [ConnectionResetError("reset"), asyncpg.ConnectionDoesNotExistError("closed")],
    ids=["reset", "closed"],
)
async def test_a_batch_whose_connection_failed_is_not_tried_again(error: Exception) -> None:
    """It may have committed: each of its submissions gets the error (the API's 503)."""
    assert await waiter_outcome(error) is error
