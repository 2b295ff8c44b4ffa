"""A step stopped by Celery's soft time limit fails its job as a timeout, not a crash."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded

from services.executor.tasks import execute
from shared.celery_base import producer_app
from shared.db.models import Domain, Job, JobStatus
from shared.db.session import unit_of_work
from shared.jobs.flow import NextTask
from shared.jobs.runner import run_step
from shared.tenants.service import create_tenant


@pytest.fixture
def app(redis_url: str) -> Iterator[Celery]:
    producer = producer_app()
    yield producer
    producer.close()


def executing_job() -> uuid.UUID:
    with unit_of_work() as session:
        tenant = create_tenant(session, f"soft-limit-{uuid.uuid4().hex[:10]}")
        job = Job(
            id=uuid.uuid4(),
            tenant_id=tenant.id,
            status=JobStatus.EXECUTING.value,
            domain=Domain.MATH.value,
            question="q",
            levels=[0],
            max_answer_tokens=16,
            prompt_version="test",
        )
        session.add(job)
        return job.id


def test_a_soft_time_limit_is_reported_as_a_timeout(database_url: str, app: Celery) -> None:
    job_id = executing_job()

    def step() -> list[NextTask]:
        raise SoftTimeLimitExceeded()

    run_step(execute, app, str(job_id), step)
    with unit_of_work() as session:
        job = session.get(Job, job_id)
        assert job is not None
        assert job.status == JobStatus.FAILED.value
        assert job.error_code == "timeout"
        assert "time limit" in (job.error_message or "")
        assert "SoftTimeLimitExceeded" not in (job.error_message or "")
