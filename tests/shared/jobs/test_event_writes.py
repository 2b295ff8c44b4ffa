"""A transaction's job events: written together with its flush or commit, in the order they
were added, after the job they belong to, visible to its own queries, gone with a rollback."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import event, select, text

from shared.db.models import Job, JobEvent, JobStatus
from shared.db.session import get_engine, session_factory, unit_of_work
from shared.jobs import repository as repo
from shared.jobs.states import add_event, transition
from tests.shared.jobs.support import queued_job

pytestmark = pytest.mark.usefixtures("database_url")  # committed work, in the test database


def _committed_job() -> uuid.UUID:
    with unit_of_work() as session:
        return queued_job(session).id


def _kinds(job_id: uuid.UUID) -> list[tuple[str, str | None, int | None]]:
    with unit_of_work() as session:
        return [(e.kind, e.status, e.level) for e in repo.events(session, job_id)]


def test_a_new_job_and_its_events_commit_together_in_order() -> None:
    with unit_of_work() as session:
        job = queued_job(session, flush=False)  # not flushed: its events must still follow its row
        add_event(session, job, "submitted")
        transition(session, job, JobStatus.SCORING, level=0)
        add_event(session, job, "score", level=0, score=0.5)
        transition(session, job, JobStatus.COORDINATING, level=1)
        job_id = job.id
    assert _kinds(job_id) == [
        ("submitted", "queued", None),
        ("status", "scoring", 0),
        ("score", "scoring", 0),
        ("status", "coordinating", 1),
    ]
    with unit_of_work() as session:
        score = next(e for e in repo.events(session, job_id) if e.kind == "score")
        assert score.data == {"score": 0.5}


def test_the_events_of_a_transaction_are_one_statement() -> None:
    job_id = _committed_job()
    statements: list[tuple[str, bool]] = []

    def count(
        conn: object, cursor: object, statement: str, params: object, ctx: object, many: bool
    ) -> None:
        statements.append((statement, many))

    engine = get_engine()  # listened to before the session's connection exists
    event.listen(engine, "before_cursor_execute", count)
    try:
        with unit_of_work() as session:
            job = session.get_one(Job, job_id)
            for level in range(3):
                add_event(session, job, "insights", level=level)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    inserts = [s for s in statements if s[0].lstrip().upper().startswith("INSERT INTO JOB_EVENTS")]
    assert len(inserts) == 1, statements
    assert not inserts[0][1], "one statement, not an executemany of one per row"
    assert [k for k, _, _ in _kinds(job_id)] == ["insights"] * 3


def test_a_query_of_the_transaction_sees_its_events_before_the_commit() -> None:
    job_id = _committed_job()
    with unit_of_work() as session:
        job = session.get_one(Job, job_id)
        add_event(session, job, repo.REANNOUNCED)  # nothing else pending: no flush of its own
        seen = session.scalars(select(JobEvent.kind).where(JobEvent.job_id == job_id)).all()
        assert seen == [repo.REANNOUNCED]
        assert repo.reannounced_since_progress(session, job_id) == 1


def test_a_rolled_back_transaction_writes_no_events() -> None:
    job_id = _committed_job()
    with pytest.raises(RuntimeError), unit_of_work() as session:
        job = session.get_one(Job, job_id)
        transition(session, job, JobStatus.SCORING, level=0)
        raise RuntimeError("the step failed before its commit")
    assert _kinds(job_id) == []
    session = session_factory()()
    try:  # the same session, used again after its rollback, writes only its new events
        job = session.get_one(Job, job_id)
        add_event(session, job, "first")
        session.rollback()
        add_event(session, session.get_one(Job, job_id), "second")
        session.commit()
    finally:
        session.close()
    assert [k for k, _, _ in _kinds(job_id)] == ["second"]


def test_an_event_write_that_fails_rolls_the_whole_step_back() -> None:
    job_id = _committed_job()
    with pytest.raises(Exception, match="job_events"), unit_of_work() as session:
        job = session.get_one(Job, job_id)
        transition(session, job, JobStatus.SCORING, level=0)
        repo.add_event(session, uuid.uuid4(), "orphan", status=None)  # no such job: FK refuses
    with unit_of_work() as session:
        status = session.execute(
            text("SELECT status FROM jobs WHERE id = :id"), {"id": job_id}
        ).scalar_one()
    assert status == JobStatus.QUEUED.value
    assert _kinds(job_id) == []
