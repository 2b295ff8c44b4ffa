"""The job row as the pipeline reads, locks and writes it: the columns a step decides on,
one statement each, built once and run by the driver (:mod:`shared.db.driver`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, inspect, literal, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import instance_state

from shared.db.driver import DriverStatement
from shared.db.models import Job, ModelCall
from shared.db.session import get_engine


def lock_job(session: Session, job_id: uuid.UUID) -> Job | None:
    """The job row, locked until the end of the transaction (steps of one job serialize)."""
    return session.scalars(
        select(Job)
        .where(Job.id == job_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


# What a step decides on and writes: never the prompt, the answer or the metadata.
STATE_COLUMNS = (
    Job.tenant_id,
    Job.status,
    Job.domain,
    Job.policy,
    Job.levels,
    Job.fixed_level,
    Job.max_answer_tokens,
    Job.budget_id,
    Job.key_budget_id,
    Job.reserved_amount,
    Job.prices,
    Job.current_level,
    Job.insight_tokens,
    Job.insights_finished,
    Job.scores,
    Job.truncation_level,
    Job.truncation_tokens,
    Job.termination_reason,
    Job.cancel_requested,
    Job.started_at,
    Job.finished_at,
)
# ... and what its engine call is prompted with (and whether someone follows its answer live).
PROMPT_COLUMNS = (Job.question, Job.insights, Job.stream_answer)
# ... and what settlement reads besides the state: the job's webhook and what it tells. Loaded
# with the lock, as a deferred column read later costs a statement of its own.
SETTLEMENT_COLUMNS = (
    Job.webhook_url,
    Job.answer,
    Job.error_code,
    Job.error_message,
    Job.job_metadata,
)


@contextmanager
def outside_transaction() -> Iterator[Session]:
    """A session whose statements each run on their own (autocommit): a read before a step's
    engine call costs one statement, not BEGIN, SELECT and COMMIT."""
    with get_engine().connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        with Session(bind=connection, expire_on_commit=False) as session:
            yield session


# A step's statements are built once: building a query costs more CPU than the database spends
# running it. They are compiled once and run by psycopg on the session's connection
# (shared.db.driver): a step reads a few columns of one row and writes back what it changed, and
# the ORM's loading and flush, or SQLAlchemy's execution of a Core statement, cost several times
# the statements themselves (benchmarks/step_bench.py).
_JOBS = cast(Table, Job.__table__)
_SPENT = (
    select(func.coalesce(func.sum(ModelCall.cost), 0))
    .where(ModelCall.job_id == Job.id)
    .scalar_subquery()
)
_STEP_READ = (Job.id, *STATE_COLUMNS, *PROMPT_COLUMNS)
_STEP_LOCK = (Job.id, *STATE_COLUMNS)
_STEP_READ_KEYS = tuple(column.key for column in _STEP_READ)
_STEP_LOCK_KEYS = tuple(column.key for column in _STEP_LOCK)
_SNAPSHOTS = {
    spent: DriverStatement(
        select(*_STEP_READ, (_SPENT if spent else literal(0)).label("spent")).where(
            Job.id == bindparam("job_id")
        )
    )
    for spent in (False, True)
}
_STEP_LOCKS = {
    spent: DriverStatement(
        select(*_STEP_LOCK, (_SPENT if spent else literal(0)).label("spent"))
        .where(Job.id == bindparam("job_id"))
        .with_for_update(of=Job)
    )
    for spent in (False, True)
}
# Settlement locks what a step locks and what it tells the job's webhook, with what the job's
# calls cost.
_SETTLEMENT_READ = (*_STEP_LOCK, *SETTLEMENT_COLUMNS)
_SETTLEMENT_KEYS = tuple(column.key for column in _SETTLEMENT_READ)
_SETTLEMENT_LOCK = DriverStatement(
    select(*_SETTLEMENT_READ, _SPENT.label("spent"))
    .where(Job.id == bindparam("job_id"))
    .with_for_update(of=Job)
)


_JOB_CLASS = inspect(Job).class_manager
_COLUMN_OF = {attr.key: attr.columns[0].name for attr in inspect(Job).column_attrs}


def _job_of(keys: tuple[str, ...], row: Sequence[Any]) -> Job:
    """A Job holding ``row``'s values (under its attributes ``keys``) as loaded: no session,
    no pending change; what is assigned to it afterwards is what :func:`save_state` writes."""
    return loaded_job(zip(keys, row, strict=True))


def loaded_job(values: Iterable[tuple[str, Any]] | Mapping[str, Any]) -> Job:
    """A Job holding ``values`` (attribute name to value) as if loaded, on no session. The
    constructor would fire an attribute event per value: several times the cost, on the
    paths (admission, every step) where the job is only read afterwards."""
    job = _JOB_CLASS.new_instance()
    instance_state(job).dict.update(values)
    return job


def job_snapshot(
    session: Session, job_id: uuid.UUID, *, with_spent: bool = False
) -> tuple[Job, Decimal] | None:
    """The job's state and prompt, on no session, and (when asked) what its recorded calls
    cost so far, in one statement: what a step decides on before its engine call."""
    row = _SNAPSHOTS[with_spent].first(session.connection(), {"job_id": job_id})
    if row is None:
        return None
    return _job_of(_STEP_READ_KEYS, row[:-1]), Decimal(str(row[-1]))


def state_of(read: Job) -> Job:
    """A job holding ``read``'s state columns as loaded, on no session: what a step records
    into when it writes without a lock (:func:`record_step`), as into :func:`lock_state`'s."""
    values = instance_state(read).dict
    state = {key: values[key] for key in _STEP_LOCK_KEYS}
    state["scores"] = list(state["scores"])  # not shared with ``read``
    return loaded_job(state)


def lock_state(
    session: Session, job_id: uuid.UUID, *, with_spent: bool = False
) -> tuple[Job, Decimal] | None:
    """The job's state columns, its row locked until the end of the transaction, and (when
    asked) what its recorded calls cost so far, in one statement. The job is on no session:
    :func:`save_state` writes what the step changed in it."""
    row = _STEP_LOCKS[with_spent].first(session.connection(), {"job_id": job_id})
    if row is None:
        return None
    return _job_of(_STEP_LOCK_KEYS, row[:-1]), Decimal(str(row[-1]))


def save_state(session: Session, job: Job) -> None:
    """Write the columns assigned to ``job`` (from :func:`lock_state`) since it was locked, in
    one UPDATE."""
    changed, values = _changes(job)
    if changed:
        _update_of(changed).execute(session.connection(), {"_job_id": job.id, **values})


def _changes(job: Job) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The attributes assigned to ``job`` since it was loaded, and their values; from then on
    it holds them as loaded."""
    state = instance_state(job)
    changed = tuple(sorted(state.committed_state))
    state.committed_state.clear()
    return changed, {key: state.dict[key] for key in changed}


@lru_cache(maxsize=64)
def _update_of(keys: tuple[str, ...]) -> DriverStatement:
    """UPDATE jobs SET <keys> (and updated_at, by its column default) WHERE id: one statement per
    set of changed columns, built once."""
    return DriverStatement(
        update(_JOBS)
        .where(_JOBS.c.id == bindparam("_job_id"))
        .values(
            {_COLUMN_OF[key]: bindparam(key, type_=_JOBS.c[_COLUMN_OF[key]].type) for key in keys}
        )
    )


@dataclass(frozen=True)
class Prompt:
    """What a shadow run repeats of its job: the question as prompted, at the job's prices."""

    question: str
    prompt_version: str
    prices: dict[str, Any] | None


def prompt_of(session: Session, job_id: uuid.UUID) -> Prompt:
    """One statement for the columns a settlement's lock leaves unloaded."""
    row = session.execute(
        select(Job.question, Job.prompt_version, Job.prices).where(Job.id == job_id)
    ).one()
    return Prompt(row.question, row.prompt_version, row.prices)


def lock_settling(session: Session, job_id: uuid.UUID) -> tuple[Job, Decimal] | None:
    """The job's state and what settlement reads, its row locked until the end of the
    transaction, and what its recorded calls cost, in one statement. As with
    :func:`lock_state`, the job is on no session: :func:`save_state` writes what settlement
    changed in it."""
    row = _SETTLEMENT_LOCK.first(session.connection(), {"job_id": job_id})
    if row is None:
        return None
    return _job_of(_SETTLEMENT_KEYS, row[:-1]), Decimal(str(row[-1]))
