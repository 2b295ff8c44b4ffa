"""OpenAI-compatible synchronous front door: one Tandem job per chat completion.

``model`` is ``tandem`` (the default policy) or ``tandem-<policy>`` (``tandem-llm_only``
...). Earlier turns are passed to the job as context lines before the last user message.
Tandem-only options (``domain``, ``max_cost``) ride in OpenAI's ``extra_body``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from starlette.concurrency import run_in_threadpool

from services.api import repository as repo
from services.api import service
from services.api.deps import SettingsDep, TenantDep
from services.api.errors import JobFailed, JobTimeout
from services.api.schemas import (
    ChatChoice,
    ChatChoiceMessage,
    ChatCompletion,
    ChatCompletionRequest,
    ChatMessage,
    ChatUsage,
    ErrorOut,
    JobCreate,
)
from services.api.settings import ApiSettings
from shared.db.models import Job, JobStatus, Policy, Role
from shared.db.session import unit_of_work
from shared.errors import NotFoundError, ValidationFailed

router = APIRouter(prefix="/v1", tags=["openai"])
MODEL_PREFIX = "tandem"


def policy_for_model(model: str) -> Policy:
    if model == MODEL_PREFIX:
        return Policy.TANDEM
    name = model.removeprefix(f"{MODEL_PREFIX}-")
    if name != model and name in {p.value for p in Policy if p is not Policy.FIXED_LEVEL}:
        return Policy(name)
    raise NotFoundError(
        f"model {model!r} does not exist; use 'tandem', 'tandem-llm_only' or 'tandem-slm_only'",
        field="model",
    )


def _text(message: ChatMessage) -> str:
    if isinstance(message.content, str):
        return message.content
    parts = message.content or []
    return "".join(str(p.get("text", "")) for p in parts if p.get("type") == "text")


def question_of(messages: list[ChatMessage]) -> str:
    users = [i for i, m in enumerate(messages) if m.role == "user"]
    if not users:
        raise ValidationFailed("messages need at least one user message", field="messages")
    last = users[-1]
    context = [f"{m.role}: {_text(m)}" for m in messages[:last] if _text(m)]
    question = _text(messages[last])
    return "\n".join([*context, question]) if context else question


def _finished(settings: ApiSettings, job_id: uuid.UUID) -> tuple[Job, int, int, str] | None:
    with unit_of_work(settings.database_url) as session:
        job = session.get(Job, job_id)
        if job is None or not JobStatus(job.status).terminal:
            return None
        usage = repo.usage_by_model(session, job.id)
        finish = repo.last_finish_reason(session, job.id, Role.EXECUTOR.value)
        if Policy(job.policy) is Policy.LLM_ONLY:
            finish = repo.last_finish_reason(session, job.id, Role.COORDINATOR.value)
        prompt = sum(int(u.prompt_tokens or 0) for u in usage)
        generated = sum(int(u.generated_tokens or 0) for u in usage)
        return job, prompt, generated, finish or "stop"


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={code: {"model": ErrorOut} for code in (401, 402, 404, 413, 422, 429, 502, 504)},
)
async def chat_completions(
    request: Request,
    body: ChatCompletionRequest,
    tenant: TenantDep,
    settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> ChatCompletion:
    """Run a Tandem job and answer in OpenAI's chat.completion shape, with ``usage``."""
    if body.stream:
        raise ValidationFailed(
            "stream=true is not supported; use /v1/jobs/{id}/events", field="stream"
        )
    policy = policy_for_model(body.model)
    answer_tokens = body.max_completion_tokens or body.max_tokens
    if answer_tokens is not None:
        answer_tokens = min(
            max(answer_tokens, settings.min_answer_tokens), settings.max_answer_tokens
        )
    job_request = JobCreate(
        question=question_of(body.messages),
        domain=body.domain,
        policy=policy,
        max_answer_tokens=answer_tokens,
        max_cost=body.max_cost,
    )
    submission = await run_in_threadpool(
        service.submit_job,
        settings,
        tenant,
        job_request,
        profiles=request.app.state.profiles(),
        publish=request.app.state.publisher,
        idempotency_key=service.check_idempotency_key(idempotency_key),
    )
    job_id = submission.job.id
    deadline = time.monotonic() + settings.chat_wait_s
    while (done := await run_in_threadpool(_finished, settings, job_id)) is None:
        if time.monotonic() > deadline:
            raise JobTimeout(
                f"job {job_id} is still running; follow it at /v1/jobs/{job_id}", job_id=str(job_id)
            )
        await asyncio.sleep(settings.poll_interval_s)
    job, prompt_tokens, completion_tokens, finish = done
    if job.status != JobStatus.SUCCEEDED.value or job.answer is None:
        raise JobFailed(
            f"job {job_id} ended {job.status}: {job.error_message or 'no answer'}",
            job_id=str(job_id),
        )
    tandem: dict[str, Any] = {
        "job_id": str(job.id),
        "url": service.job_url(job.id),
        "cost": str(job.cost or Decimal(0)),
        "truncation_level": job.truncation_level,
        "termination_reason": job.termination_reason,
    }
    return ChatCompletion(
        id=f"chatcmpl-{job.id.hex}",
        created=int(job.created_at.timestamp()),
        model=body.model,
        choices=[
            ChatChoice(
                index=0,
                message=ChatChoiceMessage(content=job.answer),
                finish_reason="length" if finish == "length" else "stop",
            )
        ],
        usage=ChatUsage(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        ),
        tandem=tandem,
    )
