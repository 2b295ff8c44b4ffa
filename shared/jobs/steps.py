"""The one shape of every engine step: read → already done? → engine call → record.

A step reads the job's state outside any transaction (one statement) and decides from it alone
whether its message is the one the job waits for (:func:`shared.jobs.flow.next_task`). Then it
calls its engine with no transaction open, and records the call and the job's new state in ONE
statement (:func:`shared.jobs.repository.record_step`): it locks the job's row for itself only,
and writes only if the job still holds the state the step read, so what the step computed from
that state is what it would compute under the lock. The model call's unique (job_id, step) key
makes a duplicate delivery record nothing. A job that changed while the engine ran (cancelled,
failed by the sweeper, recorded by a duplicate) is decided on again in a short transaction
under its row lock, as before the statement existed: recorded if it still waits for this step,
left as it is otherwise. The runner publishes the next task after the record. The read, the
record and the lock are statements run on the driver (:mod:`shared.db.driver`), and the job
they return belongs to no session: what the step assigns to it is written by the record, or by
one UPDATE under the lock (:func:`shared.jobs.repository.save_state`), not through an ORM flush.

A redelivered message of a step that is already recorded re-announces what the job waits for
now (its successor's message may be what was lost); a message the job does not wait for yet
does nothing.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from shared.db.models import Job, JobStatus, Role
from shared.db.session import unit_of_work
from shared.engines.base import EngineClient, Generation
from shared.engines.config import EngineConfig
from shared.errors import NotFoundError
from shared.jobs import repository as repo
from shared.jobs.flow import NextTask, next_task
from shared.jobs.runner import call_engine
from shared.jobs.service import PricedCall, cancel, is_over, priced_call, record_call
from shared.jobs.states import transition
from shared.logging import bind
from shared.prices.snapshot import priced
from shared.tasks import TaskName

T = TypeVar("T")


class Step(ABC, Generic[T]):
    """One engine step of one job; subclasses say what it calls and how it records the result."""

    task: TaskName  # the message that asks for this step
    status: JobStatus  # the job's status while the step runs
    needs_spent: bool = False  # whether :meth:`record` needs what the job has cost so far

    def __init__(self, job_id: uuid.UUID | str, level: int | None = None) -> None:
        self.job_id = uuid.UUID(str(job_id))
        self.level = level

    @property
    @abstractmethod
    def key(self) -> str:
        """The step's name in its model call's unique (job_id, step) key."""

    @property
    def message(self) -> NextTask:
        kwargs: dict[str, object] = {"job_id": str(self.job_id)}
        if self.level is not None:
            kwargs["level"] = self.level
        return NextTask(self.task, kwargs)

    @abstractmethod
    def done(self, job: Job) -> bool:
        """Whether the job's state shows this step recorded."""

    @abstractmethod
    def role(self, job: Job) -> Role:
        """Whose engine the step calls."""

    def prepare(self, session: Session, job: Job) -> None:
        """Reads of other tables the step needs, before the engine call (outside a transaction)."""

    @abstractmethod
    def call(self, job: Job) -> Callable[[EngineClient], Awaitable[T]]:
        """The engine call, built from the job as it was read (prompt included)."""

    @abstractmethod
    def generation(self, result: T) -> Generation:
        """What the engine reported: the recorded call's tokens and latency."""

    def output_text(self, result: T) -> str | None:
        return self.generation(result).text

    def enter(self, session: Session, job: Job, started: datetime) -> None:
        """Move the locked job into this step's status, unless the step before did."""
        if job.status != self.status.value:
            transition(session, job, self.status, level=self.level, at=started)

    @abstractmethod
    def record(
        self,
        session: Session,
        job: Job,
        read: Job,
        result: T,
        config: EngineConfig,
        spent: Decimal,
    ) -> None:
        """Write the result into the locked ``job`` and move it into its next status.

        ``read`` is the job as read before the call (its prompt columns); the state columns of
        both are the same, as the step only records when the job still waits for it. ``spent``
        is what the job's calls cost, this one included (when :attr:`needs_spent`).
        """


def run(step: Step[T]) -> list[NextTask]:
    """Run ``step`` once; returns the task to publish after its record."""
    with repo.outside_transaction() as session:
        snapshot = repo.job_snapshot(session, step.job_id, with_spent=step.needs_spent)
        if snapshot is None:
            raise NotFoundError(f"job {step.job_id} not found", field="job_id")
        read, spent = snapshot
        bind(tenant_id=read.tenant_id)  # every later line of this task names the tenant too
        waiting = next_task(read)
        if is_over(read):
            return []
        if waiting != step.message:
            if step.done(read) and waiting is not None:
                return [waiting]  # recorded already: announce what the job waits for now
            if not read.cancel_requested:
                return []  # not this job's next step: a stale or foreign message
        if not read.cancel_requested:
            step.prepare(session, read)
    if read.cancel_requested:  # honoured at a step boundary, before any engine call
        return cancel(step.job_id, step.key)
    started = datetime.now(UTC)
    result, config = call_engine(step.role(read), step.call(read))
    following = _record(step, read, spent, result, config, started)
    if following is None:  # the job changed while the engine ran: decide under its lock
        following = _record_locked(step, read, result, config, started)
    return following


def _priced(step: Step[T], job: Job, result: T, config: EngineConfig) -> PricedCall:
    return priced_call(
        job,
        step=step.key,
        role=step.role(job),
        # The engine's model, charged at the prices the job was admitted under.
        profile=priced(config.profile, job.prices, step.role(job)),
        engine=config.kind.value,
        level=step.level,
        generation=step.generation(result),
        output_text=step.output_text(result),
    )


def _record(
    step: Step[T], read: Job, spent: Decimal, result: T, config: EngineConfig, started: datetime
) -> list[NextTask] | None:
    """Record the step on the state it was read in, in one statement
    (:func:`shared.jobs.repository.record_step`); None, with nothing written, when the job no
    longer holds that state."""
    with repo.outside_transaction() as session:
        job = repo.state_of(read)
        call = _priced(step, job, result, config)
        step.enter(session, job, started)
        step.record(session, job, read, result, config, spent + call.cost.cost)
        recorded = repo.record_step(session, read, job, call.row)
        if recorded is not repo.Recorded.RECORDED:
            session.rollback()  # the events and counts it had pending
            return None if recorded is repo.Recorded.MOVED else []
        call.count(session)
        session.commit()  # nothing left to send: the counts are taken
    following = next_task(job)
    return [following] if following is not None else []


def _record_locked(
    step: Step[T], read: Job, result: T, config: EngineConfig, started: datetime
) -> list[NextTask]:
    """Record the step in a transaction under the job's row lock, on the state it has now."""
    with unit_of_work() as session:
        locked = repo.lock_state(session, step.job_id, with_spent=step.needs_spent)
        if locked is None:
            raise NotFoundError(f"job {step.job_id} not found", field="job_id")
        job, spent = locked
        if is_over(job) or next_task(job) != step.message:
            return []  # the job moved on while the engine ran
        call = _priced(step, job, result, config)
        if not record_call(session, call):
            return []  # a duplicate delivery recorded it first and announced the next step
        step.enter(session, job, started)
        step.record(session, job, read, result, config, spent + call.cost.cost)
        repo.save_state(session, job)
        following = next_task(job)
        return [following] if following is not None else []
