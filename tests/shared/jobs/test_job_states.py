"""The job state machine: allowed paths, refused jumps, an event row per transition."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db.models import JobEvent, JobStatus, Policy
from shared.jobs import InvalidTransition, can_transition, first_task, next_task, transition
from shared.jobs.service import mark_failed
from shared.tasks import TaskName
from tests.shared.jobs.support import queued_job

S = JobStatus


@pytest.mark.parametrize(
    "path",
    [
        [S.QUEUED, S.SCORING, S.COORDINATING, S.SCORING, S.EXECUTING, S.SETTLING, S.SUCCEEDED],
        [S.QUEUED, S.COORDINATING, S.COORDINATING, S.EXECUTING, S.SETTLING, S.SUCCEEDED],
        [S.QUEUED, S.EXECUTING, S.SETTLING, S.SUCCEEDED],
        [S.QUEUED, S.SCORING, S.FAILED],
        [S.QUEUED, S.COORDINATING, S.CANCELLED],
        [S.QUEUED, S.REJECTED],
    ],
)
def test_allowed_paths(path: list[JobStatus]) -> None:
    assert all(can_transition(a, b) for a, b in itertools.pairwise(path))


@pytest.mark.parametrize(
    ("current", "to"),
    [
        (S.QUEUED, S.SUCCEEDED),
        (S.SCORING, S.SETTLING),
        (S.EXECUTING, S.SCORING),
        (S.SETTLING, S.CANCELLED),
        (S.SUCCEEDED, S.FAILED),
        (S.FAILED, S.QUEUED),
        (S.CANCELLED, S.SETTLING),
    ],
)
def test_refused_transitions(current: JobStatus, to: JobStatus) -> None:
    assert not can_transition(current, to)


def test_every_transition_is_an_event_row(db_session: Session) -> None:
    job = queued_job(db_session)
    transition(db_session, job, S.SCORING, level=0)
    transition(db_session, job, S.EXECUTING, level=0, reason="sufficient")
    db_session.flush()
    rows = db_session.scalars(
        select(JobEvent).where(JobEvent.job_id == job.id).order_by(JobEvent.id)
    ).all()
    assert [(r.kind, r.status, r.level) for r in rows] == [
        ("status", "scoring", 0),
        ("status", "executing", 0),
    ]
    assert rows[0].data == {"from": "queued"}
    assert rows[1].data == {"from": "scoring", "reason": "sufficient"}


def test_refused_transition_changes_nothing(db_session: Session) -> None:
    job = queued_job(db_session)
    with pytest.raises(InvalidTransition) as error:
        transition(db_session, job, S.SUCCEEDED)
    assert error.value.http_status == 409
    assert job.status == S.QUEUED.value
    db_session.flush()
    assert db_session.scalars(select(JobEvent).where(JobEvent.job_id == job.id)).all() == []


@pytest.mark.parametrize(
    ("policy", "fixed", "name", "kwargs"),
    [
        (Policy.TANDEM, None, TaskName.SCORER_SCORE, {"level": 0}),
        (Policy.SLM_ONLY, None, TaskName.EXECUTOR_EXECUTE, {}),
        (Policy.LLM_ONLY, None, TaskName.EXECUTOR_EXECUTE, {}),
        (Policy.FIXED_LEVEL, 0, TaskName.EXECUTOR_EXECUTE, {}),
        (Policy.FIXED_LEVEL, 1, TaskName.COORDINATOR_EXTEND, {"level": 1}),
    ],
)
def test_first_task_by_policy(
    db_session: Session, policy: Policy, fixed: int | None, name: TaskName, kwargs: dict[str, int]
) -> None:
    job = queued_job(db_session, policy, fixed)
    task = first_task(job)
    assert task.name is name
    assert dict(task.kwargs) == {"job_id": str(job.id), **kwargs}


def test_leaving_the_queue_writes_started_at_and_an_end_finished_at(db_session: Session) -> None:
    job = queued_job(db_session)
    began = datetime.now(UTC) - timedelta(seconds=5)
    transition(db_session, job, S.SCORING, level=0, at=began)
    assert job.started_at == began and job.finished_at is None
    transition(db_session, job, S.COORDINATING, level=1)
    assert job.started_at == began  # written once, when the work began
    transition(db_session, job, S.FAILED)
    assert job.finished_at is not None and job.finished_at >= began
    never = queued_job(db_session)
    transition(db_session, never, S.CANCELLED)  # cancelled in the queue: it never started
    assert never.started_at is None and never.finished_at is not None


def test_a_failure_is_a_transition_with_its_reason(db_session: Session) -> None:
    job = queued_job(db_session)
    mark_failed(db_session, job, "publish_failed", "the job queue was unreachable")
    db_session.flush()
    event = db_session.scalars(select(JobEvent).where(JobEvent.job_id == job.id)).one()
    assert (event.kind, event.status) == ("status", "failed")
    assert event.data["error_code"] == "publish_failed"
    assert (job.error_code, job.error_message) == (
        "publish_failed",
        "the job queue was unreachable",
    )


@pytest.mark.parametrize(
    ("status", "level", "name", "kwargs"),
    [
        (S.SCORING, 2, TaskName.SCORER_SCORE, {"level": 2}),
        (S.COORDINATING, 2, TaskName.COORDINATOR_EXTEND, {"level": 3}),
        (S.EXECUTING, 1, TaskName.EXECUTOR_EXECUTE, {}),
        (S.SETTLING, 1, TaskName.ACCOUNTING_SETTLE, {}),
    ],
)
def test_the_status_says_which_step_the_job_waits_for(
    db_session: Session, status: JobStatus, level: int, name: TaskName, kwargs: dict[str, int]
) -> None:
    job = queued_job(db_session)
    job.status, job.current_level = status.value, level
    task = next_task(job)
    assert task is not None and task.name is name
    assert dict(task.kwargs) == {"job_id": str(job.id), **kwargs}
    job.status = S.SUCCEEDED.value
    assert next_task(job) is None
