"""Executor: the final reasoning and answer from question + the chosen insights.

Under tandem the insights are cut back to the chosen level t* (the text the coordinator had
written when level t* was scored); the baselines use everything written (fixed_level), none
(slm_only), or the coordinator's model itself answering the plain question (llm_only).
"""

from __future__ import annotations

import uuid

from shared.answers import extract_answer
from shared.db.models import Job, JobStatus, Policy, Role, TerminationReason
from shared.db.session import unit_of_work
from shared.engines.base import EngineClient, Generation
from shared.jobs import repository as repo
from shared.jobs.flow import NextTask, settle_task
from shared.jobs.runner import call_engine
from shared.jobs.service import cancel_if_requested, is_over, locked, record_call
from shared.jobs.states import add_event, transition
from shared.prompts import executor_prompt, family_of

STEP = "answer"


def chosen_insights(job: Job) -> str:
    """The insight text the answer is conditioned on."""
    if Policy(job.policy) is Policy.TANDEM and job.truncation_level is not None:
        entry = next(s for s in job.scores if s["level"] == job.truncation_level)
        return job.insights[: int(entry["insight_chars"])]
    return job.insights


def execute(job_id: uuid.UUID | str) -> list[NextTask]:
    with unit_of_work() as session:
        job = locked(session, job_id)
        if repo.get_call(session, job.id, STEP) is not None:
            return [settle_task(job.id)] if job.status == JobStatus.SETTLING.value else []
        if is_over(job):
            return []
        cancelled = cancel_if_requested(session, job, STEP)
        if cancelled is not None:
            return cancelled
        policy = Policy(job.policy)
        if policy is Policy.TANDEM and job.truncation_level is None:
            return []  # the scorer has not decided yet: not this job's next step
        if job.truncation_level is None:
            job.truncation_level = job.current_level
            job.truncation_tokens = job.insight_tokens
            job.termination_reason = TerminationReason.POLICY.value
        if job.status != JobStatus.EXECUTING.value:
            transition(
                session,
                job,
                JobStatus.EXECUTING,
                level=job.truncation_level,
                reason=job.termination_reason,
            )
        question, domain, max_tokens = job.question, job.domain, job.max_answer_tokens
        insights = chosen_insights(job)
        role = Role.COORDINATOR if policy is Policy.LLM_ONLY else Role.EXECUTOR
        level = job.truncation_level

    async def generate(client: EngineClient) -> Generation:
        prompt = executor_prompt(question, insights, domain, family_of(client.profile.name))
        return await client.generate(prompt, max_new_tokens=max_tokens)

    generation, config = call_engine(role, generate)

    with unit_of_work() as session:
        job = locked(session, job_id)
        if is_over(job):
            return []
        if not record_call(
            session,
            job,
            step=STEP,
            role=role,
            profile=config.profile,
            engine=config.kind.value,
            level=level,
            generation=generation,
            output_text=generation.text,
        ):
            return []
        job.reasoning = generation.text
        job.answer = extract_answer(generation.text, domain)
        add_event(
            session,
            job,
            "answer",
            level=level,
            answer=job.answer,
            generated_tokens=generation.generated_tokens,
            finish_reason=generation.finish_reason,
        )
        transition(session, job, JobStatus.SETTLING)
        return [settle_task(job.id)]
