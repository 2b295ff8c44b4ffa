"""A chat completion streamed in OpenAI's chunk format, by following the job's events.

Progress through the insight levels is not content: the stream holds only a first chunk (role,
and the ``tandem`` job id) until the executor starts; its text then streams as it is generated,
in ``reasoning_content`` deltas (as reasoning models stream their thinking), then the answer
extracted from it, from the executor's ``answer`` event, is the content; then the finish chunk
once the job is over, a ``usage`` chunk when ``stream_options.include_usage`` asks for one,
and ``[DONE]``. Keep-alive pings (SSE comments) cover the wait.
A job that ends without an answer, or outlives ``chat_wait_s``, ends the stream with an
``{"error": ...}`` message in OpenAI's shape, which the SDK raises as ``APIError``. A client that
leaves before the end cancels its job, as closing an OpenAI stream stops the generation.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import redis.asyncio as aioredis
from starlette.concurrency import run_in_threadpool

from services.api.chat.errors import JobFailed
from services.api.chat.schemas import (
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChunkChoice,
    ChunkDelta,
)
from services.api.chat.service import (
    Finished,
    finished,
    openai_reason,
    tandem_of,
    timeout_error,
)
from services.api.errors import openai_error_body
from services.api.jobs.follow import ClientLeft, FollowTimeout, LiveAnswer, LiveText, follow_job
from services.api.jobs.service import cancel_job, job_url
from services.api.settings import ApiSettings
from shared.db.models import Job, Tenant
from shared.errors import TandemError

Message = dict[str, str]
DONE: Message = {"data": "[DONE]"}


def _message(chunk: ChatCompletionChunk) -> Message:
    # ``usage`` stays, null, as OpenAI writes it; the extension only where it says something.
    return {"data": chunk.model_dump_json(exclude={"tandem"} if chunk.tandem is None else None)}


def _error(exc: TandemError) -> Message:
    _, body = openai_error_body(exc)
    return {"data": json.dumps({"error": body})}


class Chunks:
    """Chunks of one completion: one id, creation time and model on every chunk."""

    def __init__(self, job: Job, model: str) -> None:
        self.id = f"chatcmpl-{job.id.hex}"
        self.created = int(job.created_at.timestamp())
        self.model = model

    def chunk(self, choices: list[ChunkChoice], **extra: Any) -> Message:
        return _message(
            ChatCompletionChunk(
                id=self.id, created=self.created, model=self.model, choices=choices, **extra
            )
        )

    def delta(self, delta: ChunkDelta, **extra: Any) -> Message:
        return self.chunk([ChunkChoice(delta=delta)], **extra)

    def finish(self, done: Finished, engine_reason: str | None) -> Message:
        reason = (
            done.openai_finish_reason if engine_reason is None else openai_reason(engine_reason)
        )
        choice = ChunkChoice(delta=ChunkDelta(), finish_reason=reason)
        return self.chunk([choice], tandem=tandem_of(done.job))

    def usage(self, done: Finished) -> Message:
        return self.chunk([], usage=done.usage)


async def chunks(
    settings: ApiSettings,
    tenant: Tenant,
    job: Job,
    body: ChatCompletionRequest,
    disconnected: Callable[[], Awaitable[bool]],
    redis_client: aioredis.Redis[bytes],
) -> AsyncIterator[Message]:
    """The SSE messages of one streamed completion of the admitted ``job``."""
    out = Chunks(job, body.model)
    live = LiveAnswer(redis_client, job.id) if job.stream_answer else None
    yield out.delta(
        ChunkDelta(role="assistant", content=""),
        tandem={"job_id": str(job.id), "url": job_url(job.id)},
    )
    over = False
    try:
        sent, engine_reason = "", None
        progress = follow_job(
            settings, job.id, live=live, disconnected=disconnected, timeout_s=settings.chat_wait_s
        )
        async for part in progress:
            if isinstance(part, LiveText):
                yield out.delta(ChunkDelta(reasoning_content=part.text))
            elif isinstance(part, dict) and part["kind"] == "answer" and part["data"].get("answer"):
                sent += str(part["data"]["answer"])
                engine_reason = part["data"].get("finish_reason")
                yield out.delta(ChunkDelta(content=str(part["data"]["answer"])))
        over = True
        done = await run_in_threadpool(finished, settings, job.id)
        if done is None:  # the job row is gone (a database restored under it)
            raise JobFailed(f"job {job.id} no longer exists", job_id=str(job.id))
        answer = done.outcome()
        if not sent:  # a job finished without an answer event: the answer is still the content
            yield out.delta(ChunkDelta(content=answer))
        yield out.finish(done, engine_reason)
        if body.stream_options is not None and body.stream_options.include_usage:
            yield out.usage(done)
        yield DONE
    except FollowTimeout:
        over = True
        yield _error(timeout_error(job.id))
    except TandemError as exc:
        over = True
        yield _error(exc)
    except ClientLeft:
        return
    finally:
        if not over:
            # The client left mid-stream: stop the job at its next step boundary. Shielded,
            # since the stream's own task is being cancelled.
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(cancel_job, settings, tenant, job.id)
