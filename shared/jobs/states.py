"""The job state machine: allowed transitions, each one an event row.

``queued → coordinating(t) ⇄ scoring(t) → executing → settling → succeeded``, with
``failed``/``cancelled`` reachable from every live state. ``coordinating → coordinating`` is the
fixed_level policy extending level after level without scoring; ``coordinating → executing`` is
its last extension. Diagram: docs/architecture.md, 'State machine of a job'.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from shared.db.models import Job, JobStatus
from shared.errors import TandemError
from shared.jobs import repository as repo
from shared.metrics import count_job_finished

S = JobStatus
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    S.QUEUED: frozenset(
        {S.COORDINATING, S.SCORING, S.EXECUTING, S.FAILED, S.CANCELLED, S.REJECTED}
    ),
    S.COORDINATING: frozenset({S.COORDINATING, S.SCORING, S.EXECUTING, S.FAILED, S.CANCELLED}),
    S.SCORING: frozenset({S.COORDINATING, S.EXECUTING, S.FAILED, S.CANCELLED}),
    S.EXECUTING: frozenset({S.SETTLING, S.FAILED, S.CANCELLED}),
    S.SETTLING: frozenset({S.SUCCEEDED, S.FAILED}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REJECTED: frozenset(),
}


class InvalidTransition(TandemError):
    code = "invalid_transition"
    http_status = 409


def can_transition(current: JobStatus | str, to: JobStatus | str) -> bool:
    return JobStatus(to) in TRANSITIONS[JobStatus(current)]


def add_event(
    session: Session, job: Job, kind: str, *, level: int | None = None, **data: Any
) -> None:
    """An event of ``job`` in its current status, written with the transaction's next flush."""
    repo.add_event(session, job.id, kind, status=job.status, level=level, data=data)


def transition(
    session: Session,
    job: Job,
    to: JobStatus,
    *,
    level: int | None = None,
    at: datetime | None = None,
    **data: Any,
) -> None:
    """Move ``job`` to ``to`` (the caller holds its row lock) and append the event row.

    The one place a job's status changes: leaving ``queued`` for work writes ``started_at``
    (``at``: when its first step began, if earlier than now), a terminal status ``finished_at``.
    """
    current = JobStatus(job.status)
    if not can_transition(current, to):
        raise InvalidTransition(
            f"job {job.id} cannot go from {current.value} to {to.value}",
            job_id=str(job.id),
            current=current.value,
            to=to.value,
        )
    job.status = to.value
    if current is JobStatus.QUEUED and not to.terminal:
        job.started_at = at or datetime.now(UTC)
    if to.terminal:
        job.finished_at = datetime.now(UTC)
        count_job_finished(session, job.policy, job.domain, to.value)
    repo.add_event(
        session,
        job.id,
        "status",
        status=to.value,
        level=level,
        data={"from": current.value, **data},
    )
