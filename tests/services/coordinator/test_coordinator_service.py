"""The coordinator's step as a plain function, on real Postgres against the simulator."""

from __future__ import annotations

import uuid

import pytest

from services.coordinator import service as coordinator
from shared.db.models import Policy
from shared.jobs.flow import NextTask
from shared.tasks import TaskName
from tests.services.pipeline.support import calls_of, history, job_row, make_tenant, submit

pytestmark = pytest.mark.usefixtures("sim_env")

QUESTION = "What is 6 * 7 + 1?"


def fixed(level: int) -> uuid.UUID:
    return submit(
        None,  # not started: the test runs its steps
        make_tenant(),
        QUESTION,
        policy=Policy.FIXED_LEVEL,
        fixed_level=level,
        levels=(0, 30, 60, 90),
        start=False,
    )


def test_each_extension_appends_insights_until_the_fixed_level() -> None:
    job_id = fixed(2)
    assert coordinator.extend(job_id, 1) == [
        NextTask(TaskName.COORDINATOR_EXTEND, {"job_id": str(job_id), "level": 2})
    ]
    first = job_row(job_id)
    assert (first.status, first.current_level, first.insight_tokens) == ("coordinating", 1, 30)
    assert first.insights and first.started_at is not None

    assert coordinator.extend(job_id, 2) == [
        NextTask(TaskName.EXECUTOR_EXECUTE, {"job_id": str(job_id)})
    ]
    job = job_row(job_id)
    assert job.insights.startswith(first.insights) and len(job.insights) > len(first.insights)
    assert (job.status, job.truncation_level, job.truncation_tokens) == ("executing", 2, 60)
    assert job.termination_reason == "policy"
    assert calls_of(job_id) == [("insights:1", "coordinator"), ("insights:2", "coordinator")]
    assert (
        history(job_id)
        == [
            ("submitted", "queued", None),
            ("status", "coordinating", 1),
            ("insights", "coordinating", 1),
            ("status", "coordinating", 2),
            ("insights", "coordinating", 2),
            ("status", "executing", 2),
        ][-len(history(job_id)) :]
    )


def test_a_redelivered_extension_records_nothing_and_announces_what_comes_next() -> None:
    job_id = fixed(1)
    following = coordinator.extend(job_id, 1)
    before = (job_row(job_id).insights, history(job_id), calls_of(job_id))
    assert coordinator.extend(job_id, 1) == following  # the lost successor, announced again
    assert (job_row(job_id).insights, history(job_id), calls_of(job_id)) == before


def test_an_extension_the_job_does_not_wait_for_does_nothing() -> None:
    job_id = fixed(2)
    assert coordinator.extend(job_id, 2) == []  # level 1 comes first
    assert coordinator.extend(job_id, 9) == []
    assert calls_of(job_id) == []
    assert job_row(job_id).status == "queued"
