"""A step's record: its model call once, and the job's new state and events in one statement
that only writes when the job still holds what the step read."""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Column, Float, Numeric, String, Table, bindparam, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.db.driver import DIALECT, DriverStatement
from shared.db.models import Job, ModelCall
from shared.jobs.repository.history import _PENDING_EVENTS, _events_insert
from shared.jobs.repository.rows import _COLUMN_OF, _JOBS, _changes


def insert_call(session: Session, values: dict[str, Any]) -> bool:
    """Record a step's call once; False when (job_id, step) is already there."""
    inserted = _INSERT_CALL.first(session.connection(), {"id": uuid.uuid4(), **values})
    return inserted is not None


# On the table, not the mapped class: the ORM's bulk insert path costs more than the statement.
_CALLS = cast(Table, ModelCall.__table__)
# Every column but the time the server stamps: a compiled statement has one set of columns, and
# a call that lacks one of them is an error (a KeyError), not a column silently left out.
_CALL_COLUMNS = tuple(column.name for column in _CALLS.c if column.name != "created_at")
_INSERT_CALL = DriverStatement(
    insert(_CALLS)
    .values({name: bindparam(name, type_=_CALLS.c[name].type) for name in _CALL_COLUMNS})
    .on_conflict_do_nothing(index_elements=["job_id", "step"])
    .returning(_CALLS.c.id)
)


class Recorded(enum.Enum):
    RECORDED = "recorded"  # the call, the job's new state and its events are written
    DUPLICATE = "duplicate"  # the call was recorded before: nothing written
    MOVED = "moved"  # the job no longer holds the state it was read in: nothing written


# What a step's record is computed from: a job that still holds what was read in these columns
# waits for the same step (flow.next_task reads its status and level) and gets the same writes.
_RECORD_GUARD = ("status", "current_level", "insight_tokens", "scores")


def record_step(session: Session, read: Job, job: Job, call: Mapping[str, Any]) -> Recorded:
    """Record a step without a transaction of its own: ONE statement locks the job's row if
    it still holds ``read``'s state, inserts the ``call`` row unless the step is recorded
    already, writes what was assigned to ``job`` (:func:`state_of` ``read``) and the
    session's pending events, and commits by itself (``session`` on an autocommit
    connection, :func:`outside_transaction`). Nothing is written unless all of it is.

    The lock is held for that statement only; a concurrent change of the row (a duplicate
    delivery, the sweeper, a cancellation) is waited for and the guard re-checked on the
    row's latest version, as an UPDATE's condition is.
    """
    changed, values = _changes(job)
    params: dict[str, Any] = {
        "_job_id": read.id,
        "_events": json.dumps(session.info.pop(_PENDING_EVENTS, [])),
        **{f"_was_{key}": getattr(read, key) for key in _RECORD_GUARD},
        **{f"_set_{key}": value for key, value in values.items()},
        **{f"_call_{name}": call.get(name) for name in _CALL_COLUMNS if name != "id"},
        "_call_id": uuid.uuid4(),
    }
    row = _record_of(changed).first(session.connection(), params)
    assert row is not None  # the statement's last SELECT returns one row
    locked, inserted = row
    if not locked:
        return Recorded.MOVED
    return Recorded.RECORDED if inserted else Recorded.DUPLICATE


def _cast(column: Column[Any]) -> str:
    """The SQL type a parameter for ``column`` is cast to: a string or a number by its family
    (a cast to ``varchar(n)`` would cut a longer value, where the column refuses it)."""
    kind = column.type
    if isinstance(kind, String):
        return "text"
    if isinstance(kind, Numeric) and not isinstance(kind, Float):
        return "numeric"
    return str(kind.compile(dialect=DIALECT))


@lru_cache(maxsize=64)
def _record_of(changed: tuple[str, ...]) -> DriverStatement:
    """The record statement for a step that assigns ``changed``, built once per set."""
    guard = " AND ".join(
        f"{name} IS NOT DISTINCT FROM CAST(:_was_{name} AS {_cast(_JOBS.c[name])})"
        for name in (_COLUMN_OF[key] for key in _RECORD_GUARD)
    )
    calls = ", ".join(_CALL_COLUMNS)
    call_values = ", ".join(
        f"CAST(:_call_{name} AS {_cast(_CALLS.c[name])})" for name in _CALL_COLUMNS
    )
    assignments = "".join(
        f"{_COLUMN_OF[key]} = CAST(:_set_{key} AS {_cast(_JOBS.c[_COLUMN_OF[key]])}), "
        for key in changed
    )
    binds = [
        *(bindparam(f"_set_{key}", type_=_JOBS.c[_COLUMN_OF[key]].type) for key in changed),
        *(bindparam(f"_was_{key}", type_=_JOBS.c[_COLUMN_OF[key]].type) for key in _RECORD_GUARD),
        *(bindparam(f"_call_{name}", type_=_CALLS.c[name].type) for name in _CALL_COLUMNS),
    ]
    return DriverStatement(
        text(
            f"""
            WITH locked AS MATERIALIZED (
                SELECT id FROM jobs
                WHERE id = CAST(:_job_id AS uuid) AND {guard}
                FOR UPDATE
            ),
            recorded_call AS (
                INSERT INTO model_calls ({calls})
                SELECT {call_values} FROM locked
                ON CONFLICT (job_id, step) DO NOTHING
                RETURNING job_id
            ),
            moved AS (
                UPDATE jobs SET {assignments}updated_at = now()
                WHERE id = (SELECT job_id FROM recorded_call)
                RETURNING id
            ),
            written AS ({_events_insert("_events", "EXISTS (SELECT 1 FROM moved)")})
            SELECT EXISTS (SELECT 1 FROM locked), EXISTS (SELECT 1 FROM recorded_call)
            """  # noqa: S608 - column names and casts, never input
        ).bindparams(*binds)
    )
