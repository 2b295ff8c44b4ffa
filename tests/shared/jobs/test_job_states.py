"""The job state machine: allowed paths, refused jumps, an event row per transition."""

from __future__ import annotations

import itertools
import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db.models import Job, JobEvent, JobStatus, Policy
from shared.jobs import InvalidTransition, can_transition, first_task, transition
from shared.tasks import TaskName
from shared.tenants.service import create_tenant

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


def _job(session: Session, policy: Policy = Policy.TANDEM, fixed: int | None = None) -> Job:
    tenant = create_tenant(session, f"states-{uuid.uuid4().hex[:8]}")
    job = Job(
        id=uuid.uuid4(),
        tenant_id=tenant.id,
        domain="math",
        policy=policy.value,
        question="What is 1 + 1?",
        levels=[0, 100],
        fixed_level=fixed,
        max_answer_tokens=64,
        prompt_version="v1",
        status=S.QUEUED.value,
    )
    session.add(job)
    session.flush()
    return job


def test_every_transition_is_an_event_row(db_session: Session) -> None:
    job = _job(db_session)
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
    job = _job(db_session)
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
    job = _job(db_session, policy, fixed)
    task = first_task(job)
    assert task.name is name
    assert dict(task.kwargs) == {"job_id": str(job.id), **kwargs}
