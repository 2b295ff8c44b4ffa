"""All SQL of the job record: admission, state reads and locks, step records (model calls),
events, stuck jobs."""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import (
    Column,
    Float,
    Numeric,
    String,
    Table,
    bindparam,
    event,
    func,
    inspect,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import instance_state

from shared.db.driver import DIALECT, DriverStatement
from shared.db.models import (
    TERMINAL_STATUSES,
    Job,
    JobEvent,
    JobStatus,
    LedgerEntry,
    LedgerKind,
    ModelCall,
)
from shared.db.session import get_engine
from shared.errors import NotFoundError


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


def lock_settling(session: Session, job_id: uuid.UUID) -> tuple[Job, Decimal] | None:
    """The job's state and what settlement reads, its row locked until the end of the
    transaction, and what its recorded calls cost, in one statement. As with
    :func:`lock_state`, the job is on no session: :func:`save_state` writes what settlement
    changed in it."""
    row = _SETTLEMENT_LOCK.first(session.connection(), {"job_id": job_id})
    if row is None:
        return None
    return _job_of(_SETTLEMENT_KEYS, row[:-1]), Decimal(str(row[-1]))


# -- events ----------------------------------------------------------------------------------
#
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
    status = select(Job.status).where(Job.id == job_id).scalar_subquery()
    row = session.execute(
        insert(JobEvent)
        .from_select(
            ["job_id", "kind", "status", "data"],
            select(
                literal(job_id),
                literal(RETRY),
                status,
                func.jsonb_build_object(
                    "task", task, "attempt", attempt, "code", code, "error", error
                ),
            ).where(status.is_not(None)),
        )
        .returning(JobEvent.id)
    ).first()
    if row is None:
        raise NotFoundError(f"job {job_id} not found", field="job_id")


def last_retry(session: Session, job_id: uuid.UUID) -> JobEvent | None:
    return session.scalars(
        select(JobEvent)
        .where(JobEvent.job_id == job_id, JobEvent.kind == RETRY)
        .order_by(JobEvent.id.desc())
        .limit(1)
    ).first()


def reannounced_since_progress(session: Session, job_id: uuid.UUID) -> int:
    """How often the sweeper sent the job's step again, with nothing of its queue left on the
    broker, since the job last moved (any event other than a retry or an announcement)."""
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


# -- a step's record in one statement ----------------------------------------------------------


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


def calls(session: Session, job_id: uuid.UUID) -> list[ModelCall]:
    return list(
        session.scalars(
            select(ModelCall).where(ModelCall.job_id == job_id).order_by(ModelCall.created_at)
        )
    )


def events(session: Session, job_id: uuid.UUID) -> list[JobEvent]:
    return list(
        session.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id))
    )


def shadow_run(session: Session, job_id: uuid.UUID) -> Job | None:
    """The job's shadow run (services.accounting.shadow), if it has one."""
    return session.scalars(select(Job).where(Job.shadow_of == job_id)).first()


def stale_jobs(session: Session, before: datetime, limit: int = 100) -> list[uuid.UUID]:
    """Live jobs untouched since ``before`` (their worker died or their message was lost)."""
    live = [s.value for s in JobStatus if s not in TERMINAL_STATUSES]
    return list(
        session.scalars(
            select(Job.id)
            .where(Job.status.in_(live), Job.updated_at < before)
            .order_by(Job.updated_at)
            .limit(limit)
        )
    )


def unsettled_finished_jobs(session: Session, limit: int = 100) -> list[uuid.UUID]:
    """Failed or cancelled jobs holding a reservation with no settle entry yet."""
    settled = select(LedgerEntry.job_id).where(LedgerEntry.kind == LedgerKind.SETTLE.value)
    return list(
        session.scalars(
            select(Job.id)
            .where(
                Job.status.in_([JobStatus.FAILED.value, JobStatus.CANCELLED.value]),
                Job.budget_id.is_not(None),
                Job.id.not_in(settled),
            )
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class Candidate:
    """One plan admission may reserve: the cheapest that fits is not chosen, the first is."""

    cost: Decimal
    levels: list[int]
    max_answer_tokens: int


@dataclass(frozen=True)
class Admitted:
    budget_id: uuid.UUID
    choice: int  # index into the candidates
    reserved: Decimal
    created_at: datetime
    key_budget_id: uuid.UUID | None = None  # the submitting key's row the hold is also in


async def admit(
    connection: Any,
    *,
    job: dict[str, Any],
    period_key: str,
    candidates: list[Candidate],
    ledger_id: uuid.UUID,
    max_active: int | None = None,
    key_period: str | None = None,
) -> Admitted | AtLimit | None:
    """Admission in ONE statement on an asyncpg ``connection``: reserve the first candidate that
    fits the tenant's budget row (``spent + reserved + cost <= cap``), insert the job with that
    plan, its ledger hold and its ``submitted`` event; None (and nothing written) when no
    candidate fits.

    The budget row is locked by this statement only: run outside a transaction it commits by
    itself, and the fit is re-checked on the row's latest version when a concurrent admission
    held it, so no interleaving can push spent + reserved over the cap. ``job`` holds the Job's
    attributes (as its constructor takes them) except the plan, budget and reservation, which
    come from the chosen candidate; its ``prices`` (:func:`shared.prices.snapshot`) are what
    the job's calls will be charged at.

    A job with an ``api_key_id`` is held in its key's budget row of ``key_period`` too, in the
    same statement: the candidate must also fit the key's cap (when it has one), the key's row
    is locked before the tenant's (the order settlement locks them in), and None comes back as
    well when the key's row does not exist yet.

    With ``max_active`` (the tenant's concurrent-jobs limit) it is three statements in one
    transaction: lock the budget rows, count the tenant's unfinished jobs (a statement of its
    own, so it sees every admission that committed while this one waited for the lock), then
    admit unless the count is at the limit (:class:`AtLimit`, nothing written).
    """
    params = [job["tenant_id"], period_key, job["id"], ledger_id, *_job_values(job)]
    for candidate in candidates:
        params += [candidate.cost, json.dumps(candidate.levels), candidate.max_answer_tokens]
    key_id = job.get("api_key_id")
    params += [key_id, key_period]  # after the candidates: see _admit_statement
    statement = _admit_statement(len(candidates))
    if max_active is None:
        row = await connection.fetchrow(statement, *params)
    else:
        async with connection.transaction():
            locked = await connection.fetchval(
                _LOCK_BUDGETS, job["tenant_id"], period_key, key_id, key_period
            )
            if locked is None:
                return None  # a budget row is missing: nothing was locked or counted
            active = await connection.fetchval(_ACTIVE_JOBS, job["tenant_id"], _FINISHED)
            if active >= max_active:
                return AtLimit(active)
            row = await connection.fetchrow(statement, *params)
    if row is None:
        return None
    return Admitted(
        budget_id=row[0],
        choice=int(row[1]),
        reserved=row[2],
        created_at=row[3],
        key_budget_id=row[4],
    )


@dataclass(frozen=True)
class Together:
    """One job of a batch admitted together: its attributes as :func:`admit` takes them, the
    one plan it may reserve, and the id of its ledger hold."""

    job: dict[str, Any]
    candidate: Candidate
    ledger_id: uuid.UUID


async def admit_together(
    connection: Any,
    batch: Sequence[Together],
    *,
    tenant_id: uuid.UUID,
    period_key: str,
    key_id: uuid.UUID | None = None,
    key_period: str | None = None,
) -> list[Admitted] | None:
    """Admission of several of one tenant's jobs, submitted with one key (or none), in ONE
    statement on an asyncpg ``connection``: all of them at their one plan, or none.

    The budget rows are locked once for the whole batch and its total is reserved only if it
    fits (``spent + reserved + total <= cap``, the key's cap too), so each job's plan fits
    after the ones before it, as if each had been admitted alone in turn; then every job, hold
    and ``submitted`` event is inserted. None, with nothing written, when the total does not
    fit or a budget row does not exist: the caller admits each job alone (:func:`admit`), which
    may still fit a smaller plan or tell why not. A job whose idempotency key was used fails
    the whole statement (``UniqueViolationError``), again with nothing written.

    Jobs whose tenant limits how many may run at once are not admitted this way: that count
    is :func:`admit`'s, under the rows' lock."""
    if any(i.job["tenant_id"] != tenant_id or i.job.get("api_key_id") != key_id for i in batch):
        raise ValueError("a batch admits one tenant's jobs of one key")
    values = [
        (
            item.job["id"],
            item.ledger_id,
            *_job_values(item.job),
            item.candidate.cost,
            json.dumps(item.candidate.levels),
            item.candidate.max_answer_tokens,
        )
        for item in batch
    ]
    columns = [list(column) for column in zip(*values, strict=True)]
    rows = await connection.fetch(
        _ADMIT_TOGETHER, tenant_id, period_key, key_id, key_period, *columns
    )
    if not rows:
        return None
    created = {
        job_id: (budget_id, at, key_budget_id) for budget_id, job_id, at, key_budget_id in rows
    }
    admitted = []
    for item in batch:
        budget_id, at, key_budget_id = created[item.job["id"]]
        admitted.append(Admitted(budget_id, 0, item.candidate.cost, at, key_budget_id))
    return admitted


# What both admission statements share: the key's row, locked before the tenant's (the
# order settlement locks them in); the hold it takes as the tenant's did; the job row's columns.
_KEY_ROW = """kb AS (
    SELECT k.id, k.cap, k.spent, k.reserved FROM key_budgets AS k
    WHERE k.api_key_id = {key_id}::uuid AND k.period_key = {key_period}::text
    FOR UPDATE
),"""
_KEY_HELD = """key_held AS (
    UPDATE key_budgets AS k
    SET reserved = k.reserved + h.cost, updated_at = now()
    FROM held AS h, kb
    WHERE k.id = kb.id
),"""
_JOB_COLUMNS = (
    "id, tenant_id, status, domain, policy, question, metadata, webhook_url, idempotency_key, "
    "request_hash, levels, fixed_level, max_answer_tokens, prompt_version, budget_id, max_cost, "
    "reserved_amount, trace_id, prices, api_key_id, key_budget_id, stream_answer"
)
# Each job's values, one array per column, in this order; every array is cast, since asyncpg
# sends what the server infers. JSON travels as text and is cast per row.
_TOGETHER_COLUMNS = (
    ("id", "uuid"),
    ("ledger_id", "uuid"),
    ("status", "text"),
    ("domain", "text"),
    ("policy", "text"),
    ("question", "text"),
    ("metadata", "text"),
    ("webhook_url", "text"),
    ("idempotency_key", "text"),
    ("request_hash", "text"),
    ("fixed_level", "integer"),
    ("prompt_version", "text"),
    ("max_cost", "numeric"),
    ("trace_id", "text"),
    ("prices", "text"),
    ("stream_answer", "boolean"),
    ("cost", "numeric"),
    ("levels", "text"),
    ("max_answer_tokens", "integer"),
)
_ADMIT_TOGETHER = """
WITH batch AS (
    SELECT * FROM unnest({arrays}) AS b({names})
),
total AS (SELECT sum(cost) AS cost FROM batch),
{key_row}
held AS (
    UPDATE budgets AS b
    SET reserved = b.reserved + t.cost, updated_at = now()
    FROM total AS t
    WHERE b.tenant_id = $1::uuid AND b.period_key = $2::text
      AND ($3::uuid IS NULL OR EXISTS (SELECT 1 FROM kb))
      AND b.spent + b.reserved + t.cost <= b.cap
      AND NOT EXISTS (SELECT 1 FROM kb WHERE kb.spent + kb.reserved + t.cost > kb.cap)
    RETURNING b.id AS budget_id, t.cost
),
{key_held}
job AS (
    INSERT INTO jobs ({job_columns})
    SELECT b.id, $1::uuid, b.status, b.domain, b.policy, b.question, b.metadata::jsonb,
           b.webhook_url, b.idempotency_key, b.request_hash, b.levels::jsonb, b.fixed_level,
           b.max_answer_tokens, b.prompt_version, h.budget_id, b.max_cost, b.cost, b.trace_id,
           b.prices::jsonb, $3::uuid, (SELECT kb.id FROM kb), b.stream_answer
    FROM batch AS b CROSS JOIN held AS h
    RETURNING id, created_at
),
hold AS (
    INSERT INTO ledger_entries (id, tenant_id, budget_id, job_id, kind, amount)
    SELECT b.ledger_id, $1::uuid, h.budget_id, b.id, 'reserve', b.cost
    FROM batch AS b CROSS JOIN held AS h
),
event AS (
    INSERT INTO job_events (job_id, kind, status, data)
    SELECT b.id, 'submitted', b.status,
           jsonb_build_object('reserved', b.cost::text, 'levels', b.levels::jsonb,
                              'max_answer_tokens', b.max_answer_tokens)
    FROM batch AS b CROSS JOIN held AS h
)
SELECT h.budget_id, j.id, j.created_at, (SELECT kb.id FROM kb)
FROM held AS h CROSS JOIN job AS j
""".format(  # noqa: S608 - column names and casts, never input
    arrays=", ".join(f"${i + 5}::{kind}[]" for i, (_name, kind) in enumerate(_TOGETHER_COLUMNS)),
    names=", ".join(name for name, _kind in _TOGETHER_COLUMNS),
    key_row=_KEY_ROW.format(key_id="$3", key_period="$4"),
    key_held=_KEY_HELD,
    job_columns=_JOB_COLUMNS,
)


def _job_values(job: dict[str, Any]) -> tuple[Any, ...]:
    """The job's own columns as both admission statements bind them, from ``status`` to
    ``stream_answer`` (JSON as text)."""
    return (
        job["status"],
        job["domain"],
        job["policy"],
        job["question"],
        json.dumps(job["job_metadata"]),
        job["webhook_url"],
        job["idempotency_key"],
        job["request_hash"],
        job["fixed_level"],
        job["prompt_version"],
        job["max_cost"],
        job["trace_id"],
        None if job.get("prices") is None else json.dumps(job["prices"]),
        bool(job.get("stream_answer", False)),
    )


@dataclass(frozen=True)
class AtLimit:
    """Admission refused: the tenant already has ``active`` unfinished jobs."""

    active: int


_FINISHED = sorted(status.value for status in TERMINAL_STATUSES)
# The key's row first, as in the admission statement; NULL when either row is missing.
_LOCK_BUDGETS = """
WITH kb AS (
    SELECT 1 FROM key_budgets WHERE api_key_id = $3::uuid AND period_key = $4::text FOR UPDATE
)
SELECT 1 FROM budgets
WHERE tenant_id = $1 AND period_key = $2 AND ($3::uuid IS NULL OR EXISTS (SELECT 1 FROM kb))
FOR UPDATE
"""
_ACTIVE_JOBS = "SELECT count(*) FROM jobs WHERE tenant_id = $1 AND status <> ALL($2::text[])"
_FIXED_PARAMS = 18  # $1 .. $18 above; each candidate adds three


@lru_cache(maxsize=32)
def _admit_statement(candidates: int) -> str:
    """The admission statement for ``candidates`` plans, built once per count (asyncpg then
    prepares it once per connection). Every parameter is cast: asyncpg sends what the server
    infers, and a bare parameter in a SELECT list would be inferred as text."""
    rows = []
    for i in range(candidates):
        n = _FIXED_PARAMS + 3 * i
        rows.append(f"({i}, ${n + 1}::numeric, ${n + 2}::jsonb, ${n + 3}::integer)")
    # The key's id and period follow the candidates, so the job's own parameters keep their
    # numbers whatever the count.
    key = _FIXED_PARAMS + 3 * candidates
    key_id, key_period = f"${key + 1}", f"${key + 2}"
    return _ADMIT.format(
        candidates=", ".join(rows),
        key_id=key_id,
        key_row=_KEY_ROW.format(key_id=key_id, key_period=key_period),
        key_held=_KEY_HELD,
        job_columns=_JOB_COLUMNS,
    )


_ADMIT = """
WITH candidate(ord, cost, levels, max_answer_tokens) AS (VALUES {candidates}),
{key_row}
held AS (
    UPDATE budgets AS b
    SET reserved = b.reserved + c.cost, updated_at = now()
    FROM candidate AS c
    WHERE b.tenant_id = $1::uuid AND b.period_key = $2::text
      AND ({key_id}::uuid IS NULL OR EXISTS (SELECT 1 FROM kb))
      AND c.ord = (SELECT min(f.ord) FROM candidate AS f
                   WHERE b.spent + b.reserved + f.cost <= b.cap
                     AND NOT EXISTS (SELECT 1 FROM kb
                                     WHERE kb.spent + kb.reserved + f.cost > kb.cap))
    RETURNING b.id AS budget_id, c.ord, c.cost, c.levels, c.max_answer_tokens
),
{key_held}
job AS (
    INSERT INTO jobs ({job_columns})
    SELECT $3::uuid, $1::uuid, $5::text, $6::text, $7::text, $8::text, $9::jsonb, $10::text,
           $11::text, $12::text, h.levels, $13::integer, h.max_answer_tokens, $14::text,
           h.budget_id, $15::numeric, h.cost, $16::text, $17::jsonb,
           {key_id}::uuid, (SELECT kb.id FROM kb), $18::boolean
    FROM held AS h
    RETURNING created_at
),
hold AS (
    INSERT INTO ledger_entries (id, tenant_id, budget_id, job_id, kind, amount)
    SELECT $4::uuid, $1::uuid, h.budget_id, $3::uuid, 'reserve', h.cost FROM held AS h
),
event AS (
    INSERT INTO job_events (job_id, kind, status, data)
    SELECT $3::uuid, 'submitted', $5::text,
           jsonb_build_object('reserved', h.cost::text, 'levels', h.levels,
                              'max_answer_tokens', h.max_answer_tokens)
    FROM held AS h
)
SELECT h.budget_id, h.ord, h.cost, j.created_at, (SELECT kb.id FROM kb)
FROM held AS h CROSS JOIN job AS j
"""
