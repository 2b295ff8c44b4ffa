"""The OpenAI-compatible routes: ``/v1/completions`` and ``/v1/models``, as vLLM and TGI serve them.

They let the OpenAI-compatible adapter be tested over real HTTP against real models. Where
OpenAI's API leaves room they follow vLLM: ``echo`` with ``logprobs`` returns the prompt's
log-probs, the ``prompt_logprobs`` extension is accepted, a matched stop string is left out of
the text and reported as ``stop_reason``, ``temperature=0`` means greedy, and a model the server
does not serve is a 404. Errors otherwise carry TGI's body and statuses, as TGI documents
these routes. Chat is not served (the engines are prompted with plain text): the chat routes
answer as TGI does for a model without a chat template.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from services.engine.generation import Generator, Outcome, Prepared
from services.engine.routes.common import EVENT_STREAM, STREAM_HEADERS, generator_of, sse_event
from services.engine.routes.info import VERSION
from services.engine.schemas import (
    INT32_MAX,
    INT64_MAX,
    GenerateParameters,
    TGIError,
    check_parameters,
    validation_error,
)

router = APIRouter()
CHAT_UNSUPPORTED = (
    "Template error: this engine serves no chat template; send plain prompts to /generate "
    "or /v1/completions"
)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    include_usage: bool = False


class CompletionRequest(BaseModel):
    # Strict, as TGI's deserializer is: `"stream": 0` is not a boolean.
    model_config = ConfigDict(extra="ignore", strict=True)

    model: str | None = None
    prompt: str | list[str]
    max_tokens: int | None = Field(16, ge=0, le=INT32_MAX)
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = Field(None, ge=0, le=INT64_MAX)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    logprobs: int | None = None
    echo: bool = False
    prompt_logprobs: int | None = None
    n: int = 1
    suffix: str | None = None
    frequency_penalty: float | None = None
    repetition_penalty: float | None = None


def chat_unsupported() -> Response:
    """TGI's answer to a chat request for a model without a chat template."""
    return JSONResponse({"error": CHAT_UNSUPPORTED, "error_type": "template_error"}, 422)


def _prompts(body: CompletionRequest) -> list[str]:
    prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
    if len(prompts) > 1:
        # TGI's check against its max_client_batch_size (1 here, see /info).
        raise TGIError(
            422,
            "Number of prompts exceeds the maximum allowed batch size of 1",
            "batch size exceeded",
        )
    return prompts


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


def _usage(prepared: Prepared | None, outcome: Outcome | None) -> dict[str, Any]:
    prompt = len(prepared.ids) if prepared is not None else 0
    generated = outcome.generated_tokens if outcome is not None else 0
    cached = outcome.cached_tokens if outcome is not None else 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": generated,
        "total_tokens": prompt + generated,
        # OpenAI's (and vLLM's) place for prompt tokens served from the prefix cache.
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def _finish(outcome: Outcome) -> str:
    return "length" if outcome.finish_reason == "length" else "stop"


@router.get("/v1/models")
async def models(request: Request) -> dict[str, Any]:
    generator = generator_of(request)
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


@router.post("/v1/chat/completions")
async def chat_completions() -> Response:
    return chat_unsupported()


@router.post("/chat_tokenize")
async def chat_tokenize() -> Response:
    # TGI documents 404 for a chat request it cannot template and tokenize.
    return JSONResponse({"error": CHAT_UNSUPPORTED, "error_type": "template_error"}, 404)


@router.post("/v1/completions")
async def completions(request: Request, body: CompletionRequest) -> Response:
    generator = generator_of(request)
    model_id = generator.backend.model_id
    if body.model not in (None, model_id):
        raise TGIError(404, f"The model `{body.model}` does not exist.", "not_found")
    if body.n != 1:
        raise validation_error("`n` != 1 is not supported by this server")
    if body.suffix is not None:
        # TGI places a suffix with the model's completion template; there is none here.
        raise TGIError(422, "Template error: no completion template for `suffix`", "template_error")
    prompts = _prompts(body)
    parameters = _parameters(body)
    check_parameters(parameters, generator.settings.max_stop_sequences)
    want_prompt = body.prompt_logprobs is not None or (body.echo and body.logprobs is not None)
    prepared = (
        generator.prepare(prompts[0], parameters, request.headers, prompt_logprobs=want_prompt)
        if prompts
        else None
    )
    head = {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model_id,
        "system_fingerprint": VERSION,
    }
    if body.stream:
        return _stream(generator, prepared, body, head)
    if prepared is None:  # an empty prompt list asks for nothing
        return JSONResponse({**head, "choices": [], "usage": _usage(None, None)})
    outcome = await generator.complete(prepared)
    text, stop_reason = _trim_stop(outcome.text, outcome, parameters.stop)
    choice: dict[str, Any] = {
        "index": 0,
        "text": (prepared.inputs + text) if body.echo else text,
        "logprobs": _logprobs(body, outcome),
        "finish_reason": _finish(outcome),
        "stop_reason": stop_reason,
    }
    if body.prompt_logprobs is not None:
        choice["prompt_logprobs"] = [
            None
            if t.logprob is None
            else {str(t.id): {"logprob": t.logprob, "rank": 1, "decoded_token": t.text}}
            for t in outcome.prompt
        ]
    return JSONResponse({**head, "choices": [choice], "usage": _usage(prepared, outcome)})


def _logprobs(body: CompletionRequest, outcome: Outcome) -> dict[str, Any] | None:
    if body.logprobs is None:
        return None
    tokens: list[tuple[str, float | None]] = [
        (t.text, t.logprob) for t in outcome.tokens if not t.special
    ]
    if body.echo:
        tokens = [(t.text, t.logprob) for t in outcome.prompt] + tokens
    return {
        "tokens": [t for t, _ in tokens],
        "token_logprobs": [lp for _, lp in tokens],
        "top_logprobs": [None if lp is None else {t: lp} for t, lp in tokens],
        "text_offset": [],
    }


def _stream(
    generator: Generator,
    prepared: Prepared | None,
    body: CompletionRequest,
    head: dict[str, Any],
) -> StreamingResponse:
    def chunk(choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        return sse_event({**head, "choices": choices, "usage": usage}, space=True)

    stops = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    include_usage = body.stream_options is not None and body.stream_options.include_usage

    async def events() -> AsyncIterator[bytes]:
        sent, held = "", ""
        if prepared is None:
            if include_usage:
                yield chunk([], _usage(None, None))
            yield b"data: [DONE]\n\n"
            return
        async for item in generator.run(prepared):
            if isinstance(item, Outcome):
                text, stop_reason = _trim_stop(item.text, item, stops)
                final = {
                    "index": 0,
                    "text": text[len(sent) :],
                    "logprobs": None,
                    "finish_reason": _finish(item),
                    "stop_reason": stop_reason,
                }
                yield chunk([final])
                if include_usage:
                    yield chunk([], _usage(prepared, item))
            elif not item.special:
                # Hold back text that may be the start of a stop string (vLLM trims it).
                pending = item.text if not held else held + item.text
                if _may_stop(pending, stops):
                    held = pending
                    continue
                held = ""
                # OpenAI's (and the SDK's) "not finished yet" is a null finish_reason.
                yield chunk(
                    [{"index": 0, "text": pending, "logprobs": None, "finish_reason": None}]
                )
                sent += pending
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type=EVENT_STREAM, headers=STREAM_HEADERS)
