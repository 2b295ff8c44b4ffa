"""Admission as a plain function: its statement count (the floor), a publish that fails, a
refusal that keeps nothing, and a tenant's concurrent-jobs limit."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from services.api.db import async_database
from services.api.errors import RateLimited
from services.api.jobs import admission
from services.api.jobs.publish import Publisher
from services.api.jobs.schemas import JobCreate
from services.api.plans import load_profiles
from services.api.settings import ApiSettings
from shared.budgets import BudgetExceeded, verify_ledger
from shared.db.models import Budget, Job, JobEvent, JobStatus, LedgerEntry, Tenant
from shared.db.session import unit_of_work
from shared.errors import TransientError
from shared.tenants import create_tenant

BODY = JobCreate.model_validate({"question": "What is 2+2?", "domain": "math"})


@pytest.fixture
def tenant(database_url: str) -> Tenant:
    with unit_of_work() as session:
        made = create_tenant(session, f"adm-{uuid.uuid4().hex[:8]}", budget_cap=Decimal(10))
        session.refresh(made)
    return made


@pytest.fixture(autouse=True)
async def pool_closed(api_settings: ApiSettings) -> AsyncIterator[None]:
    """Each test runs on its own event loop, so on its own pool: closed with the loop."""
    yield
    await async_database(api_settings).close()


@pytest.fixture
async def statements(api_settings: ApiSettings) -> list[str]:
    """Every statement the request path's pool sends (its one connection, reused)."""
    seen: list[str] = []
    async with async_database(api_settings).connection() as connection:
        connection.add_query_logger(lambda query: seen.append(query.query))
    return seen


def published(jobs: list[tuple[Job, str]]) -> Publisher:
    async def publish(job: Job, traceparent: str) -> None:
        jobs.append((job, traceparent))

    return publish


async def test_an_accepted_submission_is_one_statement(
    api_settings: ApiSettings, tenant: Tenant, statements: list[str]
) -> None:
    sent: list[tuple[Job, str]] = []
    profiles = load_profiles()
    first = await admission.submit_job(
        api_settings, tenant, BODY, profiles=profiles, publish=published(sent)
    )
    # The period's first admission found no budget row: it made one and admitted on retry.
    assert len(statements) == 2 and first.created, statements
    statements.clear()
    submission = await admission.submit_job(
        api_settings, tenant, BODY, profiles=profiles, publish=published(sent)
    )
    assert len(statements) == 1, statements
    job_sent, traceparent = sent[-1]
    assert job_sent.id == submission.job.id
    # The job's trace id is the one its first message carries to the workers.
    assert traceparent.split("-")[1] == submission.job.trace_id
    with unit_of_work() as session:
        job = session.get(Job, submission.job.id)
        assert job is not None and job.status == JobStatus.QUEUED.value
        assert job.reserved_amount == submission.job.reserved_amount > 0
        assert job.request_hash == admission.request_hash(BODY)
        kinds = session.scalars(select(JobEvent.kind).where(JobEvent.job_id == job.id)).all()
        assert kinds == ["submitted"]
        holds = session.scalars(
            select(LedgerEntry.amount).where(LedgerEntry.job_id == job.id)
        ).all()
        assert holds == [job.reserved_amount]
        assert not verify_ledger(session)


async def test_a_refusal_keeps_nothing(api_settings: ApiSettings, tenant: Tenant) -> None:
    with unit_of_work() as session:
        poor = create_tenant(session, f"poor-{uuid.uuid4().hex[:8]}", budget_cap=Decimal("1e-9"))
        session.refresh(poor)
    sent: list[tuple[Job, str]] = []
    with pytest.raises(BudgetExceeded) as refused:
        await admission.submit_job(
            api_settings, poor, BODY, profiles=load_profiles(), publish=published(sent)
        )
    assert refused.value.cap == Decimal("1e-9")
    assert sent == []
    with unit_of_work() as session:
        count = session.scalar(
            select(func.count()).select_from(Job).where(Job.tenant_id == poor.id)
        )
        reserved = session.scalar(select(Budget.reserved).where(Budget.tenant_id == poor.id))
    assert count == 0 and not reserved  # no job, no hold


async def test_a_job_that_cannot_be_published_fails_with_its_event_and_releases_its_hold(
    api_settings: ApiSettings, tenant: Tenant
) -> None:
    async def broken(job: Job, traceparent: str) -> None:
        raise ConnectionError("broker down")

    with pytest.raises(TransientError):
        await admission.submit_job(
            api_settings, tenant, BODY, profiles=load_profiles(), publish=broken
        )
    with unit_of_work() as session:
        job = session.scalars(select(Job).where(Job.tenant_id == tenant.id)).one()
        assert job.status == JobStatus.FAILED.value and job.error_code == "publish_failed"
        assert job.finished_at is not None
        statuses = session.scalars(
            select(JobEvent.status).where(JobEvent.job_id == job.id).order_by(JobEvent.id)
        ).all()
        assert statuses[-1] == JobStatus.FAILED.value
        reserved = session.scalar(select(Budget.reserved).where(Budget.tenant_id == tenant.id))
        assert reserved == 0
        assert not verify_ledger(session)


async def test_a_concurrent_jobs_limit_holds_under_concurrent_submissions(
    api_settings: ApiSettings,
) -> None:
    with unit_of_work() as session:
        limited = create_tenant(
            session, f"lim-{uuid.uuid4().hex[:8]}", budget_cap=Decimal(10), max_concurrent_jobs=3
        )
        session.refresh(limited)
    sent: list[tuple[Job, str]] = []
    profiles = load_profiles()
    outcomes = await asyncio.gather(
        *(
            admission.submit_job(
                api_settings, limited, BODY, profiles=profiles, publish=published(sent)
            )
            for _ in range(8)
        ),
        return_exceptions=True,
    )
    admitted = [o for o in outcomes if isinstance(o, admission.Submission)]
    refused = [o for o in outcomes if isinstance(o, RateLimited)]
    assert len(admitted) == 3 and len(refused) == 5, outcomes
    assert {r.details["limit"] for r in refused} == {"concurrent_jobs"}
    with unit_of_work() as session:
        count = session.scalar(
            select(func.count()).select_from(Job).where(Job.tenant_id == limited.id)
        )
        assert count == 3 and len(sent) == 3
        assert not verify_ledger(session)
