"""The hot path's statements run by psycopg directly (``shared.db.driver``): they return what
SQLAlchemy returns for the same statement, write what it writes (JSON included), are seen by
SQLAlchemy's cursor events, and fail as SQLAlchemy's statements do: a dead connection raises
its ``OperationalError`` and leaves the pool, a constraint its ``IntegrityError``."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from sqlalchemy import bindparam, create_engine, event, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError

from shared.db.driver import DriverStatement
from shared.db.models import Job, ModelCall
from shared.db.session import get_engine, unit_of_work
from shared.jobs import repository as repo
from tests.services.pipeline.support import job_row
from tests.shared.jobs.support import queued_job

pytestmark = pytest.mark.usefixtures("database_url")

EVERY_COLUMN = select(*Job.__table__.columns).where(Job.id == bindparam("job_id"))


def _job_with_state() -> uuid.UUID:
    with unit_of_work() as session:
        job = queued_job(session)
        job.scores = [{"level": 0, "score": 0.25, "decision": "continue"}]
        job.started_at = job.created_at
        return job.id


def test_every_column_reads_back_as_sqlalchemy_reads_it() -> None:
    job_id = _job_with_state()
    with get_engine().connect() as connection:
        expected = tuple(connection.execute(EVERY_COLUMN, {"job_id": job_id}).one())
        got = DriverStatement(EVERY_COLUMN).first(connection, {"job_id": job_id})
        assert DriverStatement(EVERY_COLUMN).first(connection, {"job_id": uuid.uuid4()}) is None
    assert got == expected
    assert [type(value) for value in got] == [type(value) for value in expected]


def test_values_are_bound_through_the_column_types() -> None:
    """JSON is adapted as SQLAlchemy adapts it; the statement runs in the session's
    transaction (rolled back with it)."""
    job_id = _job_with_state()
    set_scores = DriverStatement(
        update(Job)
        .where(Job.id == bindparam("_id"))
        .values(scores=bindparam("scores", type_=Job.__table__.c.scores.type))
    )
    scores = [{"level": 0, "score": 0.5, "note": "ünïcode"}, {"level": 1, "score": None}]
    with unit_of_work() as session:
        set_scores.execute(session.connection(), {"_id": job_id, "scores": scores})
    assert job_row(job_id).scores == scores
    with pytest.raises(RuntimeError), unit_of_work() as session:
        set_scores.execute(session.connection(), {"_id": job_id, "scores": []})
        raise RuntimeError("rolled back")
    assert job_row(job_id).scores == scores


def test_cursor_events_see_the_statement() -> None:
    job_id = _job_with_state()
    seen: list[str] = []

    def listener(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", listener)
    try:
        with repo.outside_transaction() as session:
            assert repo.job_snapshot(session, job_id) is not None
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert len(seen) == 1 and seen[0].startswith("SELECT jobs.id")


def test_a_duplicate_is_sqlalchemys_integrity_error() -> None:
    job_id = _job_with_state()
    insert_call = DriverStatement(
        text(
            "INSERT INTO model_calls (id, job_id, step, role, model, engine, prompt_tokens, "
            "generated_tokens, latency_ms, flops_prompt, flops_generated, cost) VALUES "
            "(:id, :job_id, 'x', 'executor', 'm', 'sim', 1, 1, 0, 0, 0, 0)"
        )
    )
    with unit_of_work() as session:
        insert_call.execute(session.connection(), {"id": uuid.uuid4(), "job_id": job_id})
    with pytest.raises(IntegrityError), unit_of_work() as session:
        insert_call.execute(session.connection(), {"id": uuid.uuid4(), "job_id": job_id})
    with unit_of_work() as session:
        calls = session.scalars(select(ModelCall).where(ModelCall.job_id == job_id)).all()
    assert [c.cost for c in calls] == [Decimal(0)]


def test_a_dead_connection_is_sqlalchemys_operational_error_and_leaves_the_pool(
    database_url: str,
) -> None:
    job_id = _job_with_state()
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as connection:
            first = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with get_engine().connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            other.commit()
        with pytest.raises(OperationalError) as raised, engine.connect() as connection:
            DriverStatement(EVERY_COLUMN).first(connection, {"job_id": job_id})
        assert raised.value.connection_invalidated
        with engine.connect() as connection:  # the pool made a new one
            assert connection.execute(text("SELECT pg_backend_pid()")).scalar_one() != first
            assert DriverStatement(EVERY_COLUMN).first(connection, {"job_id": job_id}) is not None
    finally:
        engine.dispose()
