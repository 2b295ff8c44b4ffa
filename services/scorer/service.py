"""Scorer: executor prompt log-probs → features → ONNX classifier → stop or go on.

One forward pass of the executor model over exactly the prompt the executor would answer
(question + insights so far) gives the log-probs; :func:`shared.features.features` turns them
into the vector the classifier was trained on. Every score, threshold and decision goes into
``jobs.scores`` and the event table; the scoring pass is a recorded, charged model call.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from services.scorer.decision import Decision, decide
from services.scorer.settings import get_scorer_settings
from shared.classifier import ClassifierRuntime
from shared.classifier.runtime import resolve_path
from shared.costs import call_cost, prompt_token_bound
from shared.db.models import Job, JobStatus, Policy, Role
from shared.db.session import unit_of_work
from shared.engines.base import EngineClient, Generation, ModelProfile
from shared.engines.config import engine_config
from shared.features import features
from shared.jobs import repository as repo
from shared.jobs.flow import NextTask
from shared.jobs.runner import call_engine
from shared.jobs.service import cancel_if_requested, is_over, locked, record_call
from shared.jobs.states import add_event, transition
from shared.prompts import executor_prompt, family_of, template_overhead_tokens
from shared.tasks import TaskName

_runtime: ClassifierRuntime | None = None


def runtime() -> ClassifierRuntime:
    """The process's classifier cache (ONNX sessions are built once per version)."""
    global _runtime
    if _runtime is None:
        _runtime = ClassifierRuntime(resolve_path(get_scorer_settings().classifier_default_path))
    return _runtime


def step_name(level: int) -> str:
    return f"score:{level}"


def next_after(job: Job, level: int) -> list[NextTask]:
    entry = next((s for s in job.scores if s["level"] == level), None)
    if entry is None:
        return []
    if entry["decision"] == "stop":
        return [NextTask(TaskName.EXECUTOR_EXECUTE, {"job_id": str(job.id)})]
    return [NextTask(TaskName.COORDINATOR_EXTEND, {"job_id": str(job.id), "level": level + 1})]


def next_level_affordable(
    job: Job, level: int, spent: Decimal, coordinator: ModelProfile, executor: ModelProfile
) -> bool:
    """Whether going to level+1 and answering there still fits the job's reservation."""
    if job.budget_id is None or level + 1 >= len(job.levels):
        return True
    bound = prompt_token_bound(job.question, template_overhead_tokens(job.domain))
    here, there = job.levels[level], job.levels[level + 1]
    worst = (
        call_cost(coordinator, bound + here, there - here).cost
        + call_cost(executor, bound + there, 1).cost
        + call_cost(executor, bound + there, job.max_answer_tokens).cost
    )
    return spent + worst <= job.reserved_amount


def score(job_id: uuid.UUID | str, level: int) -> list[NextTask]:
    step = step_name(level)
    with unit_of_work() as session:
        job = locked(session, job_id)
        if repo.get_call(session, job.id, step) is not None:
            waiting = job.status == JobStatus.SCORING.value and job.current_level == level
            return next_after(job, level) if waiting else []
        if is_over(job):
            return []
        cancelled = cancel_if_requested(session, job, step)
        if cancelled is not None:
            return cancelled
        if Policy(job.policy) is not Policy.TANDEM or job.current_level != level:
            return []  # not what this job is waiting for
        if not repo.has_status_event(session, job.id, JobStatus.SCORING, level):
            transition(session, job, JobStatus.SCORING, level=level)
        question, insights, domain = job.question, job.insights, job.domain
        insight_tokens = job.insight_tokens

    async def logprobs(client: EngineClient) -> Generation:
        prompt = executor_prompt(question, insights, domain, family_of(client.profile.name))
        return await client.prompt_logprobs(prompt)

    generation, config = call_engine(Role.SCORER, logprobs)
    vector = features([t.logprob for t in generation.prompt_logprobs], level, insight_tokens)

    with unit_of_work() as session:
        job = locked(session, job_id)
        if is_over(job):
            return []
        classifier = runtime().current(session)
        value = classifier.score(vector)
        threshold = classifier.threshold(level)
        if not record_call(
            session,
            job,
            step=step,
            role=Role.SCORER,
            profile=config.profile,
            engine=config.kind.value,
            level=level,
            generation=generation,
            output_text=None,
        ):
            return []
        previous = [float(s["score"]) for s in job.scores if s["level"] < level]
        decision = decide(
            [*previous, value],
            threshold,
            last_level=len(job.levels) - 1,
            insights_finished=job.insights_finished,
            next_affordable=next_level_affordable(
                job,
                level,
                repo.spent(session, job.id),
                engine_config(Role.COORDINATOR).profile,
                config.profile,
            ),
        )
        entry: dict[str, Any] = {
            "level": level,
            "score": value,
            "threshold": threshold,
            "insight_tokens": job.insight_tokens,
            "insight_chars": len(job.insights),
            "classifier_version": classifier.version,
            "decision": "stop" if decision.stop else "continue",
        }
        job.scores = [*job.scores, entry]
        job.classifier_version = classifier.version
        job.thresholds = list(classifier.thresholds)
        add_event(
            session, job, "score", level=level, **{k: v for k, v in entry.items() if k != "level"}
        )
        if decision.stop:
            _apply_stop(session, job, decision)
        return next_after(job, level)


def _apply_stop(session: Any, job: Job, decision: Decision) -> None:
    assert decision.chosen_level is not None and decision.reason is not None
    chosen = next(s for s in job.scores if s["level"] == decision.chosen_level)
    job.truncation_level = decision.chosen_level
    job.truncation_tokens = int(chosen["insight_tokens"])
    job.termination_reason = decision.reason.value
    add_event(
        session,
        job,
        "decision",
        level=decision.chosen_level,
        reason=decision.reason.value,
        truncation_tokens=job.truncation_tokens,
        scores=[s["score"] for s in job.scores],
    )
