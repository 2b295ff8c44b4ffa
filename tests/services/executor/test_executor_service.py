"""The executor's step as a plain function, on real Postgres against the simulator."""

from __future__ import annotations

import pytest

from services.executor import service as executor
from shared.db.models import Job, Policy
from shared.jobs.flow import NextTask
from shared.tasks import TaskName
from tests.services.pipeline.support import calls_of, history, job_row, make_tenant, submit

pytestmark = pytest.mark.usefixtures("sim_env")
QUESTION = "What is 12 + 30?"


@pytest.mark.parametrize(
    ("policy", "role"), [(Policy.SLM_ONLY, "executor"), (Policy.LLM_ONLY, "coordinator")]
)
def test_a_baseline_is_answered_at_once_by_its_model(policy: Policy, role: str) -> None:
    job_id = submit(None, make_tenant(), QUESTION, policy=policy, start=False)
    assert executor.execute(job_id) == [
        NextTask(TaskName.ACCOUNTING_SETTLE, {"job_id": str(job_id)})
    ]
    job = job_row(job_id)
    assert job.status == "settling" and job.reasoning
    if policy is Policy.SLM_ONLY:  # the simulator's coordinator model writes insights only
        assert "\\boxed" in job.reasoning and job.answer is not None
    assert (job.truncation_level, job.termination_reason) == (0, "policy")
    assert job.started_at is not None and job.finished_at is None
    assert calls_of(job_id) == [("answer", role)]
    assert [(kind, status) for kind, status, _ in history(job_id)] == [
        ("status", "executing"),
        ("answer", "executing"),
        ("status", "settling"),
    ]
    assert executor.execute(job_id) == [  # redelivered: settlement announced again
        NextTask(TaskName.ACCOUNTING_SETTLE, {"job_id": str(job_id)})
    ]
    assert calls_of(job_id) == [("answer", role)]


def test_a_tandem_job_is_not_answered_before_the_scorer_decides() -> None:
    job_id = submit(None, make_tenant(), QUESTION, start=False)
    assert executor.execute(job_id) == []
    assert calls_of(job_id) == [] and job_row(job_id).status == "queued"


def test_the_answer_is_conditioned_on_the_insights_of_the_chosen_level() -> None:
    job = Job(
        policy=Policy.TANDEM.value,
        insights="Goal: add. Plan: carry the one.",
        truncation_level=1,
        scores=[{"level": 0, "insight_chars": 0}, {"level": 1, "insight_chars": 10}],
    )
    assert executor.chosen_insights(job) == "Goal: add."
    job.policy = Policy.FIXED_LEVEL.value
    assert executor.chosen_insights(job) == job.insights
