"""Scorer: executor prompt log-probs → features → ONNX classifier → stop or go on.

One forward pass of the executor model over exactly the prompt the executor would answer
(question + insights so far) gives the log-probs; the active version's feature set
(:mod:`shared.features`) turns them into the vector the classifier was trained on. The
version's own stop rule decides (:func:`shared.classifier.rules.decide_with`: the paper's
thresholds or the cost-aware lookahead). Every score, threshold and decision goes into
``jobs.scores`` and the event table; the scoring pass is a recorded, charged model call.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from services.scorer.settings import get_scorer_settings
from shared.classifier import ClassifierRuntime
from shared.classifier.decision import Decision
from shared.classifier.rules import ThresholdRule, decide_with
from shared.classifier.runtime import LoadedClassifier, resolve_path
from shared.costs import Plan, worst_case_cost
from shared.db.models import Job, JobStatus, Policy, Role
from shared.engines.base import EngineClient, Generation
from shared.engines.config import EngineConfig
from shared.features import InsightSpan, insight_end
from shared.jobs.flow import NextTask
from shared.jobs.service import enter_execution
from shared.jobs.states import add_event, transition
from shared.jobs.steps import Step, run
from shared.prices import configured_profiles, job_profiles
from shared.prompts import end_of_insights, executor_prompt, family_of, template_overhead_tokens
from shared.tasks import TaskName

_runtime: ClassifierRuntime | None = None


def runtime() -> ClassifierRuntime:
    """The process's classifier cache (ONNX sessions are built once per version)."""
    global _runtime
    if _runtime is None:
        settings = get_scorer_settings()
        _runtime = ClassifierRuntime(
            resolve_path(settings.classifier_default_path), settings.classifier_refresh_s
        )
    return _runtime


def step_name(level: int) -> str:
    return f"score:{level}"


def next_level_affordable(job: Job, question: str, level: int, spent: Decimal) -> bool:
    """Whether going to level+1 and answering there still fits the job's reservation: the
    admission's worst case (:func:`shared.costs.worst_case_cost`) of what is left."""
    if job.budget_id is None or level + 1 >= len(job.levels):
        return True
    plan = Plan(Policy.TANDEM, tuple(job.levels[: level + 2]), job.max_answer_tokens)
    # At the prices the job was admitted under, as its reservation was.
    profiles = job_profiles(configured_profiles(), job.prices)
    worst = worst_case_cost(
        plan, profiles, question, template_overhead_tokens(job.domain), scored_level=level
    )
    return spent + worst <= job.reserved_amount


class Score(Step[Generation]):
    """Score level t: the executor's prompt log-probs, features, the classifier, a decision."""

    task = TaskName.SCORER_SCORE
    status = JobStatus.SCORING
    needs_spent = True

    def __init__(self, job_id: uuid.UUID | str, level: int) -> None:
        super().__init__(job_id, level)
        self.classifier: LoadedClassifier | None = None

    @property
    def key(self) -> str:
        return step_name(self.target)

    @property
    def target(self) -> int:
        assert self.level is not None
        return self.level

    def done(self, job: Job) -> bool:
        return any(entry["level"] == self.target for entry in job.scores)

    def role(self, job: Job) -> Role:
        return Role.SCORER

    def prepare(self, session: Session, job: Job) -> None:
        # The active version is asked of Postgres at most every classifier_refresh_s.
        self.classifier = runtime().current(session)

    def call(self, job: Job) -> Callable[[EngineClient], Awaitable[Generation]]:
        question, insights, domain = job.question, job.insights, job.domain

        async def logprobs(client: EngineClient) -> Generation:
            prompt = executor_prompt(question, insights, domain, family_of(client.profile.name))
            return await client.prompt_logprobs(prompt)

        return logprobs

    def generation(self, result: Generation) -> Generation:
        return result

    def output_text(self, result: Generation) -> str | None:
        return None

    def record(
        self,
        session: Session,
        job: Job,
        read: Job,
        result: Generation,
        config: EngineConfig,
        spent: Decimal,
    ) -> None:
        assert self.classifier is not None
        level, classifier = self.target, self.classifier
        span = (
            insight_span(job, level, result, config) if classifier.feature_set.uses_span else None
        )
        vector = classifier.feature_set.vector(
            [t.logprob for t in result.prompt_logprobs], level, job.insight_tokens, span
        )
        value = classifier.score(vector)
        rule = classifier.rule_for(job.levels)
        previous = [float(s["score"]) for s in job.scores if s["level"] < level]
        # The version's own rule, by the function the offline replay runs.
        decision = decide_with(
            rule,
            [*previous, value],
            vector,
            job.levels,
            insights_finished=job.insights_finished,
            next_affordable=next_level_affordable(job, read.question, level, spent),
        )
        entry: dict[str, Any] = {
            "level": level,
            "score": value,
            # The lookahead rule has no threshold: its own predictions decide.
            "threshold": rule.threshold(job.levels[level])
            if isinstance(rule, ThresholdRule)
            else None,
            "rule": rule.kind,
            "insight_tokens": job.insight_tokens,
            "insight_chars": len(read.insights),
            "classifier_version": classifier.version,
            "decision": "stop" if decision.stop else "continue",
        }
        if span is not None:
            entry["insights_start"] = span.start
        job.scores = [*job.scores, entry]
        job.classifier_version = classifier.version
        job.thresholds = list(classifier.thresholds)
        add_event(
            session, job, "score", level=level, **{k: v for k, v in entry.items() if k != "level"}
        )
        if decision.stop:
            _apply_stop(session, job, decision)
        else:
            transition(session, job, JobStatus.COORDINATING, level=level + 1)


def insight_span(job: Job, level: int, result: Generation, config: EngineConfig) -> InsightSpan:
    """Where this level's insights lie among the scored prompt's tokens: up to the end
    marker, found by its text; from where level 0's prompt (which has no insights) had it,
    recorded with level 0's score."""
    texts = [t.text for t in result.prompt_logprobs]
    end = insight_end(texts, end_of_insights(family_of(config.profile.name)))
    start = next((int(s["insights_start"]) for s in job.scores if s["level"] == 0), end)
    return InsightSpan(end if level == 0 else start, end)


def score(job_id: uuid.UUID | str, level: int) -> list[NextTask]:
    return run(Score(job_id, level))


def _apply_stop(session: Session, job: Job, decision: Decision) -> None:
    assert decision.chosen_level is not None and decision.reason is not None
    chosen = next(s for s in job.scores if s["level"] == decision.chosen_level)
    add_event(
        session,
        job,
        "decision",
        level=decision.chosen_level,
        reason=decision.reason.value,
        truncation_tokens=int(chosen["insight_tokens"]),
        scores=[s["score"] for s in job.scores],
    )
    enter_execution(
        session, job, decision.chosen_level, int(chosen["insight_tokens"]), decision.reason
    )
