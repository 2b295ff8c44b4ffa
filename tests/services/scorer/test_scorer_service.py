"""The scorer's step as a plain function, on real Postgres against the simulator, and the
budget check it shares with admission."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from services.coordinator import service as coordinator
from services.scorer import service as scorer
from shared.costs import Plan, Profiles, call_cost, worst_case_cost
from shared.db.models import Job, Policy
from shared.engines.base import ModelProfile
from shared.jobs.flow import NextTask
from shared.prices import configured_profiles
from shared.shipped_models import LAB_V3_MODEL_PATH
from shared.tasks import TaskName
from tests.services.pipeline.support import (
    calls_of,
    history,
    job_row,
    make_tenant,
    submit,
    use_classifier,
)

NEVER, ALWAYS = 1.01, 0.0
QUESTION = "What is 9 * 9 - 1?"


@pytest.mark.usefixtures("sim_env")
def test_an_insufficient_score_sends_the_job_to_the_coordinator() -> None:
    version = use_classifier(NEVER, ALWAYS)
    job_id = submit(None, make_tenant(), QUESTION, start=False)
    assert scorer.score(job_id, 0) == [
        NextTask(TaskName.COORDINATOR_EXTEND, {"job_id": str(job_id), "level": 1})
    ]
    job = job_row(job_id)
    assert (job.status, job.current_level, job.classifier_version) == ("coordinating", 0, version)
    assert job.started_at is not None and job.truncation_level is None
    assert [(s["level"], s["decision"]) for s in job.scores] == [(0, "continue")]
    assert calls_of(job_id) == [("score:0", "scorer")]
    assert [(kind, status) for kind, status, _ in history(job_id)] == [
        ("status", "scoring"),
        ("score", "scoring"),
        ("status", "coordinating"),
    ]


@pytest.mark.usefixtures("sim_env")
def test_a_sufficient_score_sends_the_job_to_the_executor_once() -> None:
    use_classifier(ALWAYS)
    job_id = submit(None, make_tenant(), QUESTION, start=False)
    following = scorer.score(job_id, 0)
    assert following == [NextTask(TaskName.EXECUTOR_EXECUTE, {"job_id": str(job_id)})]
    job = job_row(job_id)
    assert (job.status, job.truncation_level, job.truncation_tokens) == ("executing", 0, 0)
    assert job.termination_reason == "sufficient"
    events = history(job_id)
    assert scorer.score(job_id, 0) == following  # redelivered: announced again, not re-scored
    assert scorer.score(job_id, 1) == []  # a level the job never reached
    assert history(job_id) == events and calls_of(job_id) == [("score:0", "scorer")]


@pytest.mark.usefixtures("sim_env")
def test_a_span_version_scores_each_level_from_where_level_0_put_the_insights() -> None:
    # Pair v3's classifier reads the insight span: level 0 records where the insights begin
    # (its prompt has none), later levels score the span from there.
    version = use_classifier(NEVER, NEVER, NEVER, ALWAYS, model=LAB_V3_MODEL_PATH)
    levels = (0, 7, 12, 17)
    job_id = submit(None, make_tenant(), QUESTION, levels=levels, start=False)
    scorer.score(job_id, 0)
    coordinator.extend(job_id, 1)
    scorer.score(job_id, 1)
    job = job_row(job_id)
    assert job.classifier_version == version
    zero, one = job.scores
    assert zero["insights_start"] == one["insights_start"] > 0
    assert (zero["decision"], one["decision"]) == ("continue", "continue")


def profile(name: str, price_in: str, price_out: str) -> ModelProfile:
    return ModelProfile(name, 1_000_000, Decimal(price_in), Decimal(price_out))


def test_going_on_is_priced_like_admission_with_each_roles_own_prices() -> None:
    profiles = Profiles(
        coordinator=profile("llm", "5", "15"),
        executor=profile("slm", "1", "2"),
        scorer=profile("slm-scoring", "0.5", "0"),
    )
    levels, question, overhead = (0, 100, 300), "What is 1 + 1?", 20
    bound = len(question.encode()) + overhead
    plan = Plan(Policy.TANDEM, levels, max_answer_tokens=50)
    # Scored level 0: what is left is level 1's extension and scoring, and the answer there.
    left = worst_case_cost(
        Plan(Policy.TANDEM, levels[:2], 50), profiles, question, overhead, scored_level=0
    )
    assert left == (
        call_cost(profiles.coordinator, bound, 100).cost
        + call_cost(profiles.scoring, bound + 100, 1).cost
        + call_cost(profiles.executor, bound + 100, 50).cost
    )
    # Admission reserves every level's extension and scoring and the answer at the last.
    whole = worst_case_cost(plan, profiles, question, overhead)
    assert whole == (
        call_cost(profiles.coordinator, bound, 100).cost
        + call_cost(profiles.coordinator, bound + 100, 200).cost
        + sum(call_cost(profiles.scoring, bound + lv, 1).cost for lv in levels)
        + call_cost(profiles.executor, bound + 300, 50).cost
    )
    # Without an engine of its own the scorer is priced as the executor.
    same = Profiles(profiles.coordinator, profiles.executor)
    assert same.scoring == profiles.executor


def test_the_scorer_checks_what_is_left_against_the_reservation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TANDEM_COORDINATOR_ENGINE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("TANDEM_EXECUTOR_ENGINE_URL", "http://127.0.0.1:9")
    job = Job(
        id=uuid.uuid4(),
        budget_id=uuid.uuid4(),
        levels=[0, 100, 500],
        max_answer_tokens=64,
        domain="math",
        reserved_amount=Decimal("1"),
    )
    from shared.prompts import template_overhead_tokens

    left = worst_case_cost(
        Plan(Policy.TANDEM, (0, 100), 64),
        configured_profiles(),  # the job kept no prices: the environment's
        QUESTION,
        template_overhead_tokens("math"),
        scored_level=0,
    )
    assert scorer.next_level_affordable(job, QUESTION, 0, Decimal("1") - left)
    assert not scorer.next_level_affordable(job, QUESTION, 0, Decimal("1") - left + Decimal("1e-9"))
    assert scorer.next_level_affordable(job, QUESTION, 2, Decimal("5"))  # no level left to buy
