"""A job's events: written together with their transaction, a step's retries and the
sweeper's announcements."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import event, func, literal, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.db.driver import DriverStatement
from shared.db.models import Job, JobEvent
from shared.errors import NotFoundError

# A transaction's events (a step's status change, what it recorded) are written together in
# one statement on the table, when the session flushes, commits or reads with the ORM (as the
# ORM writes pending objects): building, flushing and reading back an ORM object per event was
# about a quarter of a step's record transaction (benchmarks/step_bench.py).

_PENDING_EVENTS = "tandem.pending_job_events"  # session.info key


def add_event(
    session: Session,
    job_id: uuid.UUID,
    kind: str,
    *,
    status: str | None,
    level: int | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """One event row of ``session``'s transaction, written with its next flush; dropped if
    the transaction rolls back."""
    row = {
        "job_id": str(job_id),
        "kind": kind,
        "status": status,
        "level": level,
        "data": data or {},
    }
    session.info.setdefault(_PENDING_EVENTS, []).append(row)


def write_events(session: Session) -> None:
    """Write the transaction's queued events now (after the objects the session holds)."""
    if session.info.get(_PENDING_EVENTS):
        session.flush()  # writes the events too, unless there was nothing else to flush
        _insert_pending(session)


def _insert_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING_EVENTS, None)
    if pending:
        _INSERT_EVENTS.execute(session.connection(), {"rows": json.dumps(pending)})


# One INSERT for any number of events, their rows one JSON array unpacked in order. Its text never
# changes, so SQLAlchemy compiles it once and psycopg prepares it once per connection (a
# multi-row VALUES has no cache key and was compiled on every write; an executemany is one
# statement per row), and one text parameter costs the driver far less than a column of values.
def _events_insert(rows: str, where: str = "true") -> str:
    """INSERT of the events in the JSON array parameter ``rows``, in order, where ``where``."""
    return f"""
        INSERT INTO job_events (job_id, kind, status, level, data)
        SELECT (e.event ->> 'job_id')::uuid, e.event ->> 'kind', e.event ->> 'status',
               (e.event ->> 'level')::integer, e.event -> 'data'
        FROM jsonb_array_elements(CAST(:{rows} AS jsonb)) WITH ORDINALITY AS e(event, ord)
        WHERE {where}
        ORDER BY e.ord
        """  # noqa: S608 - a parameter's name and a fixed condition, never input


_INSERT_EVENTS = DriverStatement(text(_events_insert("rows")))


@event.listens_for(Session, "after_flush")
def _write_events_with_flush(session: Session, _context: Any) -> None:
    _insert_pending(session)  # after the flush's own rows: a job created with its events


@event.listens_for(Session, "before_commit")
def _write_events_on_commit(session: Session) -> None:
    write_events(session)


@event.listens_for(Session, "do_orm_execute")
def _write_events_before_reads(state: Any) -> None:
    if state.is_select:  # as autoflush would: a query sees the transaction's events
        write_events(state.session)


@event.listens_for(Session, "after_rollback")
def _drop_events_on_rollback(session: Session) -> None:
    session.info.pop(_PENDING_EVENTS, None)


RETRY = "retry"  # the kind of event a transient failure writes before its retry
REANNOUNCED = "reannounced"  # ... and the sweeper when it sends a job's step again


def add_retry_event(
    session: Session, job_id: uuid.UUID, task: str, attempt: int, code: str, error: str
) -> None:
    """One statement: the event takes the job's current status from its row."""
    data = {"task": task, "attempt": attempt, "code": code, "error": error}
    status = select(Job.status).where(Job.id == job_id).scalar_subquery()
    row = session.execute(
        insert(JobEvent)
        .from_select(
            ["job_id", "kind", "status", "data"],
            select(
                literal(job_id),
                literal(RETRY),
                status,
                func.jsonb_build_object(*(part for item in data.items() for part in item)),
            ).where(status.is_not(None)),
        )
        .returning(JobEvent.id)
    ).first()
    if row is None:
        raise NotFoundError(f"job {job_id} not found", field="job_id")


EXPIRED = "expired"  # ... and a worker that dropped a step's message for its age, unstarted


def last_retry(session: Session, job_id: uuid.UUID) -> JobEvent | None:
    return session.scalars(
        select(JobEvent)
        .where(JobEvent.job_id == job_id, JobEvent.kind == RETRY)
        .order_by(JobEvent.id.desc())
        .limit(1)
    ).first()


def reannounced_since_progress(session: Session, job_id: uuid.UUID) -> int:
    """How often the sweeper sent the job's step again, with nothing of its queue left on the
    broker, since the job last moved or a worker dropped its message as expired (any event
    other than a retry or an announcement): a message that expired behind a backlog was late,
    not lost."""
    moved = (
        select(func.coalesce(func.max(JobEvent.id), 0))
        .where(JobEvent.job_id == job_id, JobEvent.kind.not_in([RETRY, REANNOUNCED]))
        .scalar_subquery()
    )
    behind = func.coalesce(JobEvent.data["backlog"].as_integer(), 0)
    counted = select(func.count()).where(
        JobEvent.job_id == job_id, JobEvent.kind == REANNOUNCED, JobEvent.id > moved, behind == 0
    )
    return int(session.scalar(counted) or 0)
