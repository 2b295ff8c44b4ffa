"""Coordinator: extend the LLM's insights from level t-1 to level t.

The model continues the insights written so far (the prompt ends with them), for at most
``levels[t] - levels[t-1]`` new tokens. It has finished its insights by itself when it stops
on the end-of-insights marker or its end-of-sequence token rather than on the token budget.
The algorithm: docs/architecture.md, 'The method'.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal

from sqlalchemy.orm import Session

from shared.db.models import Job, JobStatus, Role, TerminationReason
from shared.engines.base import EngineClient, Generation
from shared.engines.config import EngineConfig
from shared.insights import Extension, extend_insights
from shared.jobs.flow import NextTask, after_extension
from shared.jobs.service import enter_execution
from shared.jobs.states import add_event, transition
from shared.jobs.steps import Step, run
from shared.tasks import TaskName


def step_name(level: int) -> str:
    return f"insights:{level}"


class Extend(Step[Extension]):
    """Extend the insights from level t-1 to level t (the message's ``level``)."""

    task = TaskName.COORDINATOR_EXTEND
    status = JobStatus.COORDINATING

    @property
    def key(self) -> str:
        return step_name(self.level or 0)

    @property
    def target(self) -> int:
        assert self.level is not None
        return self.level

    def done(self, job: Job) -> bool:
        return job.current_level >= self.target

    def role(self, job: Job) -> Role:
        return Role.COORDINATOR

    def call(self, job: Job) -> Callable[[EngineClient], Awaitable[Extension]]:
        level = self.target
        budget = job.levels[level] - job.levels[level - 1]
        question, insights, domain = job.question, job.insights, job.domain

        async def extend(client: EngineClient) -> Extension:
            return await extend_insights(client, question, insights, domain, budget)

        return extend

    def generation(self, result: Extension) -> Generation:
        return result.generation

    def record(
        self,
        session: Session,
        job: Job,
        read: Job,
        result: Extension,
        config: EngineConfig,
        spent: Decimal,
    ) -> None:
        generation, level = result.generation, self.target
        # The insights as read: a job that still waits for this level has no others.
        job.insights = read.insights + result.text
        job.insight_tokens = job.insight_tokens + generation.generated_tokens
        job.insights_finished = result.finished
        job.current_level = level
        add_event(
            session,
            job,
            "insights",
            level=level,
            new_tokens=generation.generated_tokens,
            insight_tokens=job.insight_tokens,
            insight_chars=len(read.insights) + len(result.text),
            finished=result.finished,
            finish_reason=generation.finish_reason,
        )
        following = after_extension(job, level)
        if following is JobStatus.EXECUTING:  # fixed_level's last extension
            enter_execution(session, job, level, job.insight_tokens, TerminationReason.POLICY)
        else:
            transition(session, job, following, level=level + int(following is self.status))


def extend(job_id: uuid.UUID | str, level: int) -> list[NextTask]:
    return run(Extend(job_id, level))
