"""A step's job state on SQLAlchemy Core: the read and the lock give a job on no session with
nothing pending; what the step assigns (a value, a column the lock did not read) is written by
one UPDATE, and a job left unchanged writes nothing. A step's record in one statement writes
its call, the job's state and its events only while the job holds the state the step read."""

from __future__ import annotations

import concurrent.futures
import time
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

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
        snapshot = repo.job_snapshot(session, job_id, with_spent=True)
        assert repo.job_snapshot(session, uuid.uuid4()) is None
    assert snapshot is not None
    read, spent = snapshot
    assert spent == 0
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
            job.insights = before.insights + " first fact."  # not among the locked columns
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


# -- the record in one statement ---------------------------------------------------------------


def _call(job_id: uuid.UUID, step: str = "insights:1") -> dict[str, object]:
    return {
        "job_id": job_id,
        "step": step,
        "role": "coordinator",
        "model": "m",
        "engine": "sim",
        "level": 1,
        "prompt_tokens": 10,
        "generated_tokens": 3,
        "cached_tokens": 0,
        "latency_ms": 1.5,
        "flops_prompt": Decimal(100),
        "flops_generated": Decimal(30),
        "cost": Decimal("0.000125"),
        "output_text": " first fact.",
        "finish_reason": "length",
    }


def _read(job_id: uuid.UUID) -> Job:
    with repo.outside_transaction() as session:
        snapshot = repo.job_snapshot(session, job_id)
    assert snapshot is not None
    return snapshot[0]


def _extended(session: Session, read: Job) -> Job:
    """What a coordinator step records into the job it read: level 1, three insight tokens."""
    job = repo.state_of(read)
    transition(session, job, JobStatus.COORDINATING, level=1)
    job.current_level = 1
    job.insights = read.insights + " first fact."
    job.insight_tokens = read.insight_tokens + 3
    return job


def _written(job_id: uuid.UUID) -> tuple[int, int]:
    """The job's model calls and events."""
    with unit_of_work() as session:
        return len(repo.calls(session, job_id)), len(repo.events(session, job_id))


def test_a_record_is_one_statement_of_the_call_the_state_and_the_events() -> None:
    job_id = _committed_job()
    read = _read(job_id)
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    event.listen(get_engine(), "before_cursor_execute", seen)
    try:
        with repo.outside_transaction() as session:
            job = _extended(session, read)
            recorded = repo.record_step(session, read, job, _call(job_id))
            session.commit()
    finally:
        event.remove(get_engine(), "before_cursor_execute", seen)
    assert recorded is repo.Recorded.RECORDED
    assert len(statements) == 1 and statements[0].lstrip().startswith("WITH locked")
    after = job_row(job_id)
    assert (after.status, after.current_level, after.insight_tokens) == ("coordinating", 1, 3)
    assert after.insights == read.insights + " first fact." and after.started_at is not None
    with unit_of_work() as session:
        (call,) = repo.calls(session, job_id)
        (status,) = repo.events(session, job_id)
    assert (call.step, call.cost, call.generated_tokens) == ("insights:1", Decimal("0.000125"), 3)
    assert (status.kind, status.status, status.level) == ("status", "coordinating", 1)
    assert not inspect(job).committed_state  # written: nothing left pending


def test_a_job_that_changed_after_the_read_gets_nothing_written() -> None:
    job_id = _committed_job()
    read = _read(job_id)
    with unit_of_work() as session:  # the sweeper fails it while the engine runs
        locked = repo.lock_state(session, job_id)
        assert locked is not None
        transition(session, locked[0], JobStatus.FAILED, error_code="x")
        repo.save_state(session, locked[0])
    calls, events = _written(job_id)
    with repo.outside_transaction() as session:
        recorded = repo.record_step(session, read, _extended(session, read), _call(job_id))
    assert recorded is repo.Recorded.MOVED
    assert _written(job_id) == (calls, events)
    assert job_row(job_id).status == JobStatus.FAILED.value


def test_a_recorded_call_is_not_recorded_twice() -> None:
    job_id = _committed_job()
    read = _read(job_id)
    with unit_of_work() as session:
        assert repo.insert_call(session, {"id": uuid.uuid4(), **_call(job_id)})
    with repo.outside_transaction() as session:
        recorded = repo.record_step(session, read, _extended(session, read), _call(job_id))
    assert recorded is repo.Recorded.DUPLICATE
    assert _written(job_id) == (1, 0)
    assert job_row(job_id).status == JobStatus.QUEUED.value


def test_a_record_waits_for_the_row_and_checks_its_latest_state() -> None:
    """A concurrent transaction holds the row and moves the job on: the record waits for its
    commit, then finds the state it read gone and writes nothing."""
    job_id = _committed_job()
    read = _read(job_id)
    holder = unit_of_work()
    session = holder.__enter__()
    try:
        locked = repo.lock_state(session, job_id)
        assert locked is not None
        transition(session, locked[0], JobStatus.CANCELLED)
        repo.save_state(session, locked[0])
        with concurrent.futures.ThreadPoolExecutor(1) as pool:

            def record() -> repo.Recorded:
                with repo.outside_transaction() as other:
                    job = _extended(other, read)
                    return repo.record_step(other, read, job, _call(job_id))

            pending = pool.submit(record)
            time.sleep(0.3)
            assert not pending.done()  # waiting for the row's lock
            holder.__exit__(None, None, None)
            assert pending.result(timeout=10) is repo.Recorded.MOVED
    except BaseException:
        holder.__exit__(None, None, None)
        raise
    assert _written(job_id)[0] == 0
    assert job_row(job_id).status == JobStatus.CANCELLED.value
