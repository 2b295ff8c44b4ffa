"""The steps as plain functions (no queue) on real Postgres: failure after bounded retries,
cancellation at a step boundary, stale messages, the sweeper."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from celery import Celery
from sqlalchemy import select, update

from services.accounting import service as accounting
from services.coordinator import service as coordinator
from services.scorer import service as scorer
from shared.celery_base import producer_app
from shared.db.models import Job, JobEvent, LedgerEntry, ModelCall
from shared.db.session import unit_of_work
from shared.jobs.runner import run_step
from shared.tasks import TaskName
from tests.services.pipeline.support import free_port, job_row, make_tenant, submit


@dataclass
class Request:
    retries: int


@dataclass
class FakeTask:
    """What run_step reads from a bound Celery task: its name, retry count and limit."""

    name: str
    max_retries: int
    request: Request = field(default_factory=lambda: Request(0))


@pytest.fixture
def app(database_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Celery]:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there: connection refused
    for role in ("COORDINATOR", "EXECUTOR"):
        monkeypatch.setenv(f"TANDEM_{role}_ENGINE_URL", dead)
        monkeypatch.setenv(f"TANDEM_{role}_ENGINE_MAX_ATTEMPTS", "1")
    celery = producer_app()
    yield celery
    celery.close()


def ledger(job_id: uuid.UUID) -> dict[str, Decimal]:
    with unit_of_work() as session:
        rows = session.execute(
            select(LedgerEntry.kind, LedgerEntry.amount).where(LedgerEntry.job_id == job_id)
        ).all()
    return {kind: amount for kind, amount in rows}


def test_transient_errors_retry_then_fail_the_job_and_release_its_reservation(app: Celery) -> None:
    job_id = submit(app, make_tenant(), "What is 2 + 2?", start=False)
    task = FakeTask(TaskName.SCORER_SCORE.value, max_retries=2)

    def step() -> Any:
        return scorer.score(job_id, 0)

    from shared.errors import TransientError

    with pytest.raises(TransientError):  # retries left: re-raised for Celery's autoretry
        run_step(task, app, str(job_id), step)
    assert job_row(job_id).status == "queued"  # nothing recorded: the step is tried again

    task.request.retries = 2  # the last allowed attempt
    result = run_step(task, app, str(job_id), step)
    assert result["next"] == [TaskName.ACCOUNTING_SETTLE.value]
    job = job_row(job_id)
    assert (job.status, job.error_code) == ("failed", "retries_exhausted")
    assert job.error_message and "engine" in job.error_message

    accounting.settle_job(job_id)
    accounting.settle_job(job_id)  # redelivered: nothing more
    money = ledger(job_id)
    assert money["settle"] == 0 and money["release"] == money["reserve"] == job.reserved_amount
    assert job_row(job_id).status == "failed"


def test_cancellation_is_honoured_at_the_next_step_boundary(app: Celery) -> None:
    job_id = submit(app, make_tenant(), "What is 2 + 2?", start=False)
    with unit_of_work() as session:
        session.execute(update(Job).where(Job.id == job_id).values(cancel_requested=True))
    following = scorer.score(job_id, 0)  # no engine call is attempted (the engine is dead)
    assert [t.name for t in following] == [TaskName.ACCOUNTING_SETTLE]
    assert job_row(job_id).status == "cancelled"
    accounting.settle_job(job_id)
    assert ledger(job_id)["release"] == job_row(job_id).reserved_amount


def test_stale_or_foreign_messages_do_nothing(app: Celery) -> None:
    job_id = submit(app, make_tenant(), "What is 2 + 2?", start=False)
    assert coordinator.extend(job_id, 2) == []  # the job is at level 0, waiting for its score
    assert coordinator.extend(job_id, 7) == []
    assert accounting.settle_job(job_id) == []  # not finished: nothing to settle
    with unit_of_work() as session:
        assert session.scalars(select(ModelCall).where(ModelCall.job_id == job_id)).all() == []
        assert session.scalars(select(JobEvent).where(JobEvent.job_id == job_id)).all() == []
    assert job_row(job_id).status == "queued"


def test_sweeper_announces_a_stuck_job_again_then_fails_and_settles_it(app: Celery) -> None:
    job_id = submit(app, make_tenant(), "What is 2 + 2?", start=False)

    def stale() -> None:
        with unit_of_work() as session:
            session.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(status="coordinating", updated_at=datetime.now(UTC) - timedelta(hours=2))
            )

    for _ in range(accounting.REANNOUNCE_LIMIT):
        stale()
        result, following = accounting.sweep(stuck_after_s=3600)
        assert str(job_id) in result.reannounced
    stale()
    result, following = accounting.sweep(stuck_after_s=3600)
    assert str(job_id) in result.failed
    assert any(t.kwargs.get("job_id") == str(job_id) for t in following)
    job = job_row(job_id)
    assert (job.status, job.error_code) == ("failed", "stuck")
    accounting.settle_job(job_id)
    assert ledger(job_id)["release"] == job.reserved_amount
    result, _ = accounting.sweep(stuck_after_s=3600)
    assert str(job_id) not in result.failed + result.resettled
