"""A step's job state on SQLAlchemy Core: the read and the lock give a job on no session with
nothing pending; what the step assigns (a value, a SQL expression, a column the lock did not
read) is written by one UPDATE, and a job left unchanged writes nothing."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from sqlalchemy import event, inspect

from shared.db.models import Job, JobStatus
from shared.db.session import get_engine, unit_of_work
from shared.jobs import repository as repo
from shared.jobs.states import transition
from tests.services.pipeline.support import job_row
from tests.shared.jobs.support import queued_job

pytestmark = pytest.mark.usefixtures("database_url")  # committed work, in the test database


def _committed_job() -> uuid.UUID:
    with unit_of_work() as session:
        return queued_job(session).id


def test_the_read_is_the_row_on_no_session() -> None:
    job_id = _committed_job()
    with repo.outside_transaction() as session:
        read = repo.job_snapshot(session, job_id)
        assert repo.job_snapshot(session, uuid.uuid4()) is None
    assert read is not None
    stored = job_row(job_id)
    assert (read.id, read.status, read.question, read.levels) == (
        job_id,
        JobStatus.QUEUED.value,
        stored.question,
        stored.levels,
    )
    state = inspect(read)
    assert state.session is None and not state.committed_state


def test_what_a_step_assigns_is_written_and_nothing_else() -> None:
    job_id = _committed_job()
    before = job_row(job_id)
    updates: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *_: object) -> None:
        if statement.startswith("UPDATE jobs"):
            updates.append(statement)

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", seen)
    try:
        with unit_of_work() as session:
            locked = repo.lock_state(session, job_id, with_spent=True)
            assert locked is not None
            job, spent = locked
            assert spent == Decimal(0)
            transition(session, job, JobStatus.COORDINATING, level=1)
            job.insights = Job.insights + " first fact."  # an expression: appended in SQL
            job.insight_tokens = job.insight_tokens + 3
            job.scores = [*job.scores, {"level": 0, "score": 0.25}]
            job.classifier_version = "v-test"  # not among the locked columns
            repo.save_state(session, job)
            assert not inspect(job).committed_state
            repo.save_state(session, job)  # nothing changed since: no statement
        with unit_of_work() as session:
            unchanged = repo.lock_state(session, job_id)
            assert unchanged is not None
            repo.save_state(session, unchanged[0])
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len(updates) == 1
    after = job_row(job_id)
    assert after.status == JobStatus.COORDINATING.value
    assert after.started_at is not None
    assert after.insights == before.insights + " first fact."
    assert after.insight_tokens == before.insight_tokens + 3
    assert after.scores == [*before.scores, {"level": 0, "score": 0.25}]
    assert after.classifier_version == "v-test"
    assert after.updated_at > before.updated_at
    assert (after.question, after.levels, after.reserved_amount) == (
        before.question,
        before.levels,
        before.reserved_amount,
    )


def test_a_rolled_back_step_writes_nothing() -> None:
    job_id = _committed_job()
    with pytest.raises(RuntimeError), unit_of_work() as session:
        locked = repo.lock_state(session, job_id)
        assert locked is not None
        transition(session, locked[0], JobStatus.SCORING, level=0)
        repo.save_state(session, locked[0])
        raise RuntimeError("the step failed after its update")
    assert job_row(job_id).status == JobStatus.QUEUED.value


def test_a_job_made_from_values_is_loaded_not_pending() -> None:
    """What admission answers with: the values read back, nothing for a flush to write."""
    job_id = uuid.uuid4()
    job = repo.loaded_job({"id": job_id, "levels": [0, 2], "reserved_amount": Decimal("0.5")})
    assert (job.id, job.levels, job.reserved_amount) == (job_id, [0, 2], Decimal("0.5"))
    assert job.cancel_requested is None  # a column it was not given: unset, as Job() leaves it
    state = inspect(job)
    assert state.session is None and state.transient and not state.committed_state
