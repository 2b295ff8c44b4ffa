"""Executor: the final reasoning and answer from question + the chosen insights.

Under tandem the insights are cut back to the chosen level t* (the text the coordinator had
written when level t* was scored); the baselines use everything written (fixed_level), none
(slm_only), or the coordinator's model itself answering the plain question (llm_only).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from shared.answers import extract_answer
from shared.db.models import Job, JobStatus, Policy, Role, TerminationReason
from shared.engines.base import EngineClient, Generation
from shared.engines.config import EngineConfig
from shared.jobs.answer_stream import Publisher, generate_streamed, publisher_client
from shared.jobs.flow import NextTask
from shared.jobs.service import enter_execution
from shared.jobs.states import add_event, transition
from shared.jobs.steps import Step, run
from shared.prompts import executor_prompt, family_of
from shared.tasks import TaskName

STEP = "answer"


def chosen_insights(job: Job) -> str:
    """The insight text the answer is conditioned on."""
    if Policy(job.policy) is Policy.TANDEM and job.truncation_level is not None:
        entry = next(s for s in job.scores if s["level"] == job.truncation_level)
        return job.insights[: int(entry["insight_chars"])]
    return job.insights


class Execute(Step[Generation]):
    """The final reasoning and answer."""

    task = TaskName.EXECUTOR_EXECUTE
    status = JobStatus.EXECUTING
    key = STEP

    def done(self, job: Job) -> bool:
        return job.status in (JobStatus.SETTLING.value, JobStatus.SUCCEEDED.value)

    def role(self, job: Job) -> Role:
        return Role.COORDINATOR if Policy(job.policy) is Policy.LLM_ONLY else Role.EXECUTOR

    def call(self, job: Job) -> Callable[[EngineClient], Awaitable[Generation]]:
        question, domain, max_tokens = job.question, job.domain, job.max_answer_tokens
        insights = chosen_insights(job)
        # Streamed from the engine only when someone follows the answer: a whole response is
        # cheaper to read than one event per token.
        live = Publisher(publisher_client(), job.id) if job.stream_answer else None

        async def generate(client: EngineClient) -> Generation:
            prompt = executor_prompt(question, insights, domain, family_of(client.profile.name))
            if live is not None:
                return await generate_streamed(
                    client, prompt, max_new_tokens=max_tokens, publisher=live
                )
            return await client.generate(prompt, max_new_tokens=max_tokens)

        return generate

    def generation(self, result: Generation) -> Generation:
        return result

    def enter(self, session: Session, job: Job, started: datetime) -> None:
        # A baseline goes from queued straight here: its insights are all it has (none).
        if job.status != self.status.value:
            reason = TerminationReason.POLICY
            enter_execution(session, job, job.current_level, job.insight_tokens, reason, started)

    def record(
        self,
        session: Session,
        job: Job,
        read: Job,
        result: Generation,
        config: EngineConfig,
        spent: Decimal,
    ) -> None:
        job.reasoning = result.text
        job.answer = extract_answer(result.text, job.domain)
        add_event(
            session,
            job,
            "answer",
            level=job.truncation_level,
            answer=job.answer,
            generated_tokens=result.generated_tokens,
            finish_reason=result.finish_reason,
        )
        transition(session, job, JobStatus.SETTLING)


def execute(job_id: uuid.UUID | str) -> list[NextTask]:
    return run(Execute(job_id))
