"""TGI's generation routes: ``/generate``, ``/generate_stream``, ``/`` and ``/invocations``.

Routes stay thin: the decode loop is :class:`services.engine.generation.Generator`; this module
only shapes its events into TGI's JSON and server-sent events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ValidationError
from starlette.types import Receive, Scope, Send

from services.engine.backends.base import Token
from services.engine.generation import InjectedDisconnect, Outcome, Prepared
from services.engine.routes.common import EVENT_STREAM, STREAM_HEADERS, generator_of, sse_event
from services.engine.routes.openai import CompletionRequest, chat_unsupported, completions
from services.engine.schemas import GenerateRequest, token_json, validation_error

log = logging.getLogger(__name__)
router = APIRouter()
M = TypeVar("M", bound=BaseModel)


class DroppedResponse(Response):
    """Starts a response and drops the connection: the injected ``disconnect`` fault."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
            }
        )
        await send({"type": "http.response.body", "body": b'[{"generated', "more_body": True})
        raise InjectedDisconnect("injected disconnect")


def _details(outcome: Outcome, with_prefill: bool) -> dict[str, Any]:
    return {
        "finish_reason": outcome.finish_reason,
        "generated_tokens": outcome.generated_tokens,
        "seed": outcome.seed,
        # Beyond TGI's fields: prompt tokens served from the prefix cache, not computed.
        "cached_tokens": outcome.cached_tokens,
        "prefill": [{"id": t.id, "text": t.text, "logprob": t.logprob} for t in outcome.prompt]
        if with_prefill
        else [],
        "tokens": [token_json(t.id, t.text, t.logprob, t.special) for t in outcome.tokens],
    }


def _timing_headers(prepared: Prepared, outcome: Outcome) -> dict[str, str]:
    total = time.perf_counter() - prepared.started
    per_token = total / max(1, outcome.generated_tokens)
    return {
        "x-prompt-tokens": str(len(prepared.ids)),
        "x-cached-tokens": str(outcome.cached_tokens),
        "x-generated-tokens": str(outcome.generated_tokens),
        "x-total-time": str(round(total * 1000)),
        "x-time-per-token": str(round(per_token * 1000)),
        "x-compute-type": "cpu",
    }


async def _generate_or_drop(request: Request, body: GenerateRequest, as_list: bool) -> Response:
    generator = generator_of(request)
    prepared = generator.prepare(body.inputs, body.parameters, request.headers)
    try:
        outcome = await generator.complete(prepared)
    except InjectedDisconnect:
        return DroppedResponse()
    p = body.parameters
    text = (prepared.inputs + outcome.text) if p.return_full_text else outcome.text
    response: dict[str, Any] = {"generated_text": text}
    if p.details:
        response["details"] = _details(outcome, p.decoder_input_details)
    headers = _timing_headers(prepared, outcome)
    return JSONResponse([response] if as_list else response, headers=headers)


def _stream(request: Request, body: GenerateRequest) -> StreamingResponse:
    generator = generator_of(request)
    prepared = generator.prepare(body.inputs, body.parameters, request.headers)
    p = body.parameters

    def token_event(index: int, token: Token, final: Outcome | None) -> bytes:
        # TGI leaves ``top_tokens`` out when none were asked for.
        data: dict[str, Any] = {
            "index": index,
            "token": token_json(token.id, token.text, token.logprob, token.special),
            "generated_text": None,
            "details": None,
        }
        if final is not None:
            text = (prepared.inputs + final.text) if p.return_full_text else final.text
            data["generated_text"] = text
            if p.details:
                data["details"] = {
                    "finish_reason": final.finish_reason,
                    "generated_tokens": final.generated_tokens,
                    "seed": final.seed,
                    "input_length": len(prepared.ids),
                    "cached_tokens": final.cached_tokens,
                }
        return sse_event(data)

    async def events() -> AsyncIterator[bytes]:
        index = 0
        try:
            async for item in generator.run(prepared):
                index += 1
                if isinstance(item, Outcome):
                    yield token_event(index, item.tokens[-1], item)
                else:
                    yield token_event(index, item, None)
        except InjectedDisconnect:
            raise
        except Exception as error:
            # The status is already sent: TGI reports a failure mid-stream as an error event.
            log.exception("generation failed mid-stream")
            yield sse_event({"error": str(error), "error_type": "generation"})

    return StreamingResponse(events(), media_type=EVENT_STREAM, headers=STREAM_HEADERS)


@router.post("/generate")
async def generate(request: Request, body: GenerateRequest) -> Response:
    return await _generate_or_drop(request, body, as_list=False)


@router.post("/generate_stream")
async def generate_stream(request: Request, body: GenerateRequest) -> Response:
    return _stream(request, body)


@router.post("/")
async def compat_generate(request: Request, body: GenerateRequest) -> Response:
    if body.stream:
        return _stream(request, body)
    return await _generate_or_drop(request, body, as_list=True)


def _parse(model: type[M], raw: object) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in error.errors()]
        ) from error


@router.post("/invocations")
async def invocations(request: Request) -> Response:
    """SageMaker's single route: the body's shape says which TGI route it is meant for."""
    try:
        raw = await request.json()
    except ValueError as error:
        raise validation_error(f"body is not JSON: {error}") from error
    if isinstance(raw, dict) and "messages" in raw:
        return chat_unsupported()
    if isinstance(raw, dict) and "prompt" in raw:
        return await completions(request, _parse(CompletionRequest, raw))
    body = _parse(GenerateRequest, raw)
    if body.stream:
        return _stream(request, body)
    # SageMaker's response is one GenerateResponse, not the list that ``/`` answers.
    return await _generate_or_drop(request, body, as_list=False)
