"""The OpenAI completions subset that vLLM serves (``/v1/completions``, ``/v1/models``).

It lets the OpenAI-compatible adapter be tested over real HTTP against real models. It follows
vLLM's behaviour where OpenAI's API leaves room: ``echo`` with ``logprobs`` returns the prompt's
log-probs, the ``prompt_logprobs`` extension is accepted, a matched stop string is left out of
the text and reported as ``stop_reason``, and ``temperature=0`` means greedy.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict

from services.engine.generation import Generator, Outcome, Prepared
from services.engine.schemas import GenerateParameters, TGIError

router = APIRouter(prefix="/v1")


class StreamOptions(BaseModel):
    include_usage: bool = False


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    prompt: str | list[str]
    max_tokens: int | None = 16
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    logprobs: int | None = None
    echo: bool = False
    prompt_logprobs: int | None = None
    n: int = 1


def _openai_error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "code": status}, "object": "error"},
        status_code=status,
    )


def _prompt(body: CompletionRequest) -> str:
    if isinstance(body.prompt, list):
        if len(body.prompt) != 1:
            raise TGIError(400, "only one prompt per request is supported", "validation")
        return body.prompt[0]
    return body.prompt


def _parameters(body: CompletionRequest) -> GenerateParameters:
    temperature = 1.0 if body.temperature is None else body.temperature
    greedy = temperature == 0.0
    return GenerateParameters(
        max_new_tokens=body.max_tokens,
        stop=[body.stop] if isinstance(body.stop, str) else list(body.stop or []),
        seed=body.seed,
        do_sample=not greedy,
        temperature=None if greedy or temperature == 1.0 else temperature,
        top_p=body.top_p if body.top_p is not None and body.top_p < 1.0 else None,
        top_k=body.top_k if body.top_k and body.top_k > 0 else None,
    )


def _trim_stop(text: str, finish: Outcome, stops: list[str]) -> tuple[str, str | None]:
    """vLLM leaves the matched stop string out of the text and names it in ``stop_reason``."""
    if finish.finish_reason != "stop_sequence":
        return text, None
    best: tuple[int, str] | None = None
    for stop in stops:
        at = text.find(stop)
        if at >= 0 and (best is None or at < best[0]):
            best = (at, stop)
    if best is None:
        return text, None
    return text[: best[0]], best[1]


def _may_stop(text: str, stops: list[str]) -> bool:
    """Whether ``text`` holds a stop string or ends with the start of one."""
    return any(
        stop in text or any(text.endswith(stop[:n]) for n in range(1, len(stop)))
        for stop in stops
        if stop
    )


def _usage(prepared: Prepared, outcome: Outcome) -> dict[str, int]:
    prompt = len(prepared.ids)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": outcome.generated_tokens,
        "total_tokens": prompt + outcome.generated_tokens,
    }


@router.get("/models")
async def models(request: Request) -> dict[str, Any]:
    generator: Generator = request.app.state.generator
    return {
        "object": "list",
        "data": [
            {
                "id": generator.backend.model_id,
                "object": "model",
                "created": 0,
                "owned_by": "tandem",
                "max_model_len": generator.settings.max_total_tokens,
            }
        ],
    }


@router.post("/completions")
async def completions(request: Request, body: CompletionRequest) -> Response:
    generator: Generator = request.app.state.generator
    model_id = generator.backend.model_id
    if body.model not in (None, model_id):
        return _openai_error(404, f"The model `{body.model}` does not exist.", "NotFoundError")
    if body.n != 1:
        return _openai_error(400, "n != 1 is not supported", "BadRequestError")
    try:
        prompt = _prompt(body)
        parameters = _parameters(body)
        want_prompt = body.prompt_logprobs is not None or (body.echo and body.logprobs is not None)
        prepared = generator.prepare(
            prompt, parameters, request.headers, prompt_logprobs=want_prompt
        )
    except TGIError as error:
        return _openai_error(error.status, error.message, error.error_type)
    created = int(time.time())
    completion_id = f"cmpl-{uuid.uuid4().hex}"
    if body.stream:
        return _stream(generator, prepared, body, completion_id, created, model_id)
    outcome = await generator.complete(prepared)
    text, stop_reason = _trim_stop(outcome.text, outcome, parameters.stop)
    logprobs: dict[str, Any] | None = None
    if body.logprobs is not None:
        tokens: list[tuple[str, float | None]] = [
            (t.text, t.logprob) for t in outcome.tokens if not t.special
        ]
        if body.echo:
            tokens = [(t.text, t.logprob) for t in outcome.prompt] + tokens
        logprobs = {
            "tokens": [t for t, _ in tokens],
            "token_logprobs": [lp for _, lp in tokens],
            "top_logprobs": [None if lp is None else {t: lp} for t, lp in tokens],
            "text_offset": [],
        }
    choice: dict[str, Any] = {
        "index": 0,
        "text": (prompt + text) if body.echo else text,
        "logprobs": logprobs,
        "finish_reason": "length" if outcome.finish_reason == "length" else "stop",
        "stop_reason": stop_reason,
    }
    if body.prompt_logprobs is not None:
        choice["prompt_logprobs"] = [
            None
            if t.logprob is None
            else {str(t.id): {"logprob": t.logprob, "rank": 1, "decoded_token": t.text}}
            for t in outcome.prompt
        ]
    return JSONResponse(
        {
            "id": completion_id,
            "object": "text_completion",
            "created": created,
            "model": model_id,
            "choices": [choice],
            "usage": _usage(prepared, outcome),
        }
    )


def _stream(
    generator: Generator,
    prepared: Prepared,
    body: CompletionRequest,
    completion_id: str,
    created: int,
    model_id: str,
) -> StreamingResponse:
    def chunk(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> bytes:
        data = {
            "id": completion_id,
            "object": "text_completion",
            "created": created,
            "model": model_id,
            "choices": choices,
            "usage": usage,
        }
        return f"data: {json.dumps(data)}\n\n".encode()

    stops = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])

    async def events() -> AsyncIterator[bytes]:
        sent, held = "", ""
        async for item in generator.run(prepared):
            if isinstance(item, Outcome):
                text, stop_reason = _trim_stop(item.text, item, stops)
                finish = "length" if item.finish_reason == "length" else "stop"
                yield chunk(
                    [
                        {
                            "index": 0,
                            "text": text[len(sent) :],
                            "logprobs": None,
                            "finish_reason": finish,
                            "stop_reason": stop_reason,
                        }
                    ]
                )
                if body.stream_options and body.stream_options.include_usage:
                    yield chunk([], _usage(prepared, item))
            elif not item.special:
                # Hold back text that may be the start of a stop string (vLLM trims it).
                pending = item.text if not held else held + item.text
                if _may_stop(pending, stops):
                    held = pending
                    continue
                held = ""
                yield chunk(
                    [{"index": 0, "text": pending, "logprobs": None, "finish_reason": None}]
                )
                sent += pending
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")
