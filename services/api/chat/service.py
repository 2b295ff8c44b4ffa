"""The OpenAI-compatible front door as plain functions: a chat request becomes one Tandem job,
admitted like any other (the jobs service's admission, unchanged), then waited for and answered
in OpenAI's shape, whole or streamed (:mod:`.stream`).

``model`` names a policy (:mod:`services.api.models`). Earlier turns are passed to the job as
context lines before the last user message. Tandem-only options (``domain``, ``max_cost``) ride
in OpenAI's ``extra_body``. The chat domain has no SQL of its own: it reads the job through the
jobs repository.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from starlette.concurrency import run_in_threadpool

from services.api.chat.errors import JobFailed, JobTimeout
from services.api.chat.schemas import (
    ChatChoice,
    ChatChoiceMessage,
    ChatCompletion,
    ChatCompletionRequest,
    ChatMessage,
    ChatUsage,
)
from services.api.db import unit_of_work
from services.api.jobs.admission import Submission, check_idempotency_key, submit_job
from services.api.jobs.publish import Publisher
from services.api.jobs.schemas import JobCreate
from services.api.jobs.service import job_url
from services.api.models.service import policy_for_model
from services.api.settings import ApiSettings
from shared.costs import Profiles
from shared.db.models import Job, JobStatus, Policy, Role, Tenant
from shared.errors import ValidationFailed
from shared.jobs import repository as jobs_repo
from shared.money import plain
from shared.tenants import Caller

FinishReason = Literal["stop", "length"]


def openai_reason(engine_reason: str) -> FinishReason:
    """OpenAI's finish reason for the engine's (TGI: length, eos_token, stop_sequence)."""
    return "length" if engine_reason == "length" else "stop"


@dataclass(frozen=True)
class Finished:
    job: Job
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str

    @property
    def usage(self) -> ChatUsage:
        return ChatUsage(
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            total_tokens=self.prompt_tokens + self.completion_tokens,
        )

    @property
    def openai_finish_reason(self) -> FinishReason:
        return openai_reason(self.finish_reason)

    def outcome(self) -> str:
        """The answer, or :class:`JobFailed` for a job that ended without one."""
        job = self.job
        if job.status != JobStatus.SUCCEEDED.value or job.answer is None:
            raise JobFailed(
                f"job {job.id} ended {job.status}: {job.error_message or 'no answer'}",
                job_id=str(job.id),
            )
        return job.answer


def _text(message: ChatMessage) -> str:
    if isinstance(message.content, str):
        return message.content
    parts = message.content or []
    return "".join(p["text"] for p in parts if p.get("type") == "text")


def question_of(messages: list[ChatMessage]) -> str:
    users = [i for i, m in enumerate(messages) if m.role == "user"]
    if not users:
        raise ValidationFailed("messages need at least one user message", field="messages")
    last = users[-1]
    context = [f"{m.role}: {_text(m)}" for m in messages[:last] if _text(m)]
    question = _text(messages[last])
    return "\n".join([*context, question]) if context else question


def job_request(settings: ApiSettings, body: ChatCompletionRequest) -> JobCreate:
    answer_tokens = body.max_completion_tokens or body.max_tokens
    if answer_tokens is not None:
        answer_tokens = min(
            max(answer_tokens, settings.min_answer_tokens), settings.max_answer_tokens
        )
    return JobCreate(
        question=question_of(body.messages),
        domain=body.domain,
        policy=policy_for_model(body.model),
        max_answer_tokens=answer_tokens,
        max_cost=body.max_cost,
        stream_answer=bool(body.stream),
    )


async def admit(
    settings: ApiSettings,
    tenant: Tenant,
    body: ChatCompletionRequest,
    *,
    profiles: Profiles,
    publish: Publisher,
    idempotency_key: str | None,
    caller: Caller | None = None,
) -> Submission:
    """The chat's job, through the jobs service's admission: refused (402, 422 ...) before
    any answer starts, so a stream's errors are HTTP statuses too."""
    request = job_request(settings, body)
    submission: Submission = await submit_job(
        settings,
        tenant,
        request,
        profiles=profiles,
        publish=publish,
        idempotency_key=check_idempotency_key(idempotency_key),
        caller=caller,
    )
    return submission


def finished(settings: ApiSettings, job_id: uuid.UUID) -> Finished | None:
    """The job with its token totals once it is over; None while it runs."""
    with unit_of_work(settings) as session:
        job = session.get(Job, job_id)
        if job is None or not JobStatus(job.status).terminal:
            return None
        usage = jobs_repo.usage_by_model(session, job.id)
        role = Role.COORDINATOR if Policy(job.policy) is Policy.LLM_ONLY else Role.EXECUTOR
        finish = jobs_repo.last_finish_reason(session, job.id, role.value)
        return Finished(
            job,
            sum(int(u.prompt_tokens or 0) for u in usage),
            sum(int(u.generated_tokens or 0) for u in usage),
            finish or "stop",
        )


def timeout_error(job_id: uuid.UUID) -> JobTimeout:
    return JobTimeout(
        f"job {job_id} is still running; follow it at {job_url(job_id)}", job_id=str(job_id)
    )


async def wait_for(settings: ApiSettings, job_id: uuid.UUID) -> Finished:
    deadline = time.monotonic() + settings.chat_wait_s
    while (done := await run_in_threadpool(finished, settings, job_id)) is None:
        if time.monotonic() > deadline:
            raise timeout_error(job_id)
        await asyncio.sleep(settings.poll_interval_s)
    return done


def tandem_of(job: Job) -> dict[str, Any]:
    """The ``tandem`` extension of a completion: the job behind it and what it cost."""
    return {
        "job_id": str(job.id),
        "url": job_url(job.id),
        "cost": plain(job.cost),
        "truncation_level": job.truncation_level,
        "termination_reason": job.termination_reason,
    }


async def complete(settings: ApiSettings, job: Job, body: ChatCompletionRequest) -> ChatCompletion:
    """Wait for the admitted job; answer in OpenAI's chat.completion shape, with ``usage``."""
    done = await wait_for(settings, job.id)
    answer = done.outcome()
    return ChatCompletion(
        id=f"chatcmpl-{job.id.hex}",
        created=int(job.created_at.timestamp()),
        model=body.model,
        choices=[
            ChatChoice(
                index=0,
                message=ChatChoiceMessage(content=answer),
                finish_reason=done.openai_finish_reason,
            )
        ],
        usage=done.usage,
        tandem=tandem_of(done.job),
    )
