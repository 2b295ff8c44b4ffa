"""The OpenAI-compatible front door: one Tandem job per chat completion, answered whole or
streamed as OpenAI's chunks (``stream=true``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from sse_starlette.sse import EventSourceResponse

from services.api.chat import service, stream
from services.api.chat.schemas import ChatCompletion, ChatCompletionRequest, OpenAIErrorOut
from services.api.deps import CallerDep, SettingsDep

router = APIRouter(prefix="/v1", tags=["openai"])


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "chat.completion, or chat.completion.chunk events with stream=true",
        },
        **{
            code: {"model": OpenAIErrorOut}
            for code in (400, 401, 403, 404, 409, 429, 500, 502, 503, 504)
        },
    },
)
async def chat_completions(
    request: Request,
    body: ChatCompletionRequest,
    caller: CallerDep,
    settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> ChatCompletion | EventSourceResponse:
    """Run a Tandem job and answer in OpenAI's chat.completion shape, with ``usage``."""
    tenant = caller.tenant
    submission = await service.admit(
        settings,
        tenant,
        body,
        profiles=request.app.state.profiles(),
        publish=request.app.state.publisher,
        idempotency_key=idempotency_key,
        caller=caller,
    )
    if body.stream:
        chunks = stream.chunks(
            settings,
            tenant,
            submission.job,
            body,
            request.is_disconnected,
            request.app.state.aredis,
        )
        return EventSourceResponse(chunks, ping=15)
    return await service.complete(settings, submission.job, body)
