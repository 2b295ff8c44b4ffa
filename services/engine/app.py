"""The FastAPI app: TGI's routes (and the OpenAI completions subset) over one backend.

Routes stay thin: the decode loop is :class:`services.engine.generation.Generator`; this module
only shapes its events into TGI's JSON and server-sent events.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from services.engine.backends.base import Backend, Token
from services.engine.faults import FaultInjector
from services.engine.generation import Generator, InjectedDisconnect, Outcome, Prepared
from services.engine.metrics import EngineMetrics
from services.engine.schemas import GenerateRequest, TGIError, token_json
from services.engine.settings import EngineServerSettings

log = logging.getLogger(__name__)
VERSION = "tandem-engine-0.1.0"
BackendFactory = Callable[[EngineServerSettings], Backend]


def build_backend(settings: EngineServerSettings) -> Backend:
    """The backend the settings ask for (the real one imports torch only here)."""
    if settings.backend == "sim":
        from services.engine.backends.sim import SimBackend, SimKnobs

        return SimBackend(
            settings.model, SimKnobs.from_settings(settings), model_id=settings.model_id
        )
    from services.engine.backends.gguf import GGUFBackend

    return GGUFBackend(
        settings.model,
        cache_dir=settings.cache_dir,
        dtype=settings.dtype,
        threads=settings.threads,
        model_id=settings.model_id,
        logprob_chunk_tokens=settings.logprob_chunk_tokens,
    )


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


def _details(prepared: Prepared, outcome: Outcome, with_prefill: bool) -> dict[str, Any]:
    return {
        "finish_reason": outcome.finish_reason,
        "generated_tokens": outcome.generated_tokens,
        "seed": outcome.seed,
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
        "x-generated-tokens": str(outcome.generated_tokens),
        "x-total-time": str(round(total * 1000)),
        "x-time-per-token": str(round(per_token * 1000)),
        "x-compute-type": "cpu",
    }


def create_app(
    settings: EngineServerSettings | None = None,
    *,
    backend: Backend | None = None,
    backend_factory: BackendFactory = build_backend,
) -> FastAPI:
    """The app; the backend is built at start-up (so ``/health`` answers once it is loaded)."""
    settings = settings or EngineServerSettings()
    metrics = EngineMetrics()
    from_headers = (
        settings.faults_from_headers
        if settings.faults_from_headers is not None
        else settings.backend == "sim"
    )
    faults = FaultInjector(settings.sim_faults, from_headers=from_headers)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loaded = backend or backend_factory(settings)
        app.state.generator = Generator(loaded, settings, metrics, faults)
        log.info("engine ready: %s backend, model %s", loaded.name, loaded.model_id)
        yield
        await loaded.aclose()

    app = FastAPI(title="Tandem local engine (TGI-compatible)", version=VERSION, lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = metrics

    def generator_of(request: Request) -> Generator:
        gen: Generator = request.app.state.generator
        return gen

    @app.exception_handler(TGIError)
    async def tgi_error(_: Request, error: TGIError) -> JSONResponse:
        metrics.count("tgi_request_failure", err=error.error_type)
        return JSONResponse(error.body(), status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def bad_body(_: Request, error: RequestValidationError) -> JSONResponse:
        metrics.count("tgi_request_failure", err="validation")
        first = error.errors()[0] if error.errors() else {"msg": "invalid body"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"Input validation error: {where}: {first.get('msg')}".replace(": :", ":")
        return JSONResponse({"error": message, "error_type": "validation"}, status_code=422)

    async def generate_json(request: Request, body: GenerateRequest) -> tuple[Any, dict[str, str]]:
        generator = generator_of(request)
        prepared = generator.prepare(body.inputs, body.parameters, request.headers)
        outcome = await generator.complete(prepared)
        p = body.parameters
        text = (prepared.inputs + outcome.text) if p.return_full_text else outcome.text
        response: dict[str, Any] = {"generated_text": text}
        if p.details:
            response["details"] = _details(prepared, outcome, p.decoder_input_details)
        return response, _timing_headers(prepared, outcome)

    async def generate_or_drop(request: Request, body: GenerateRequest, as_list: bool) -> Response:
        try:
            response, headers = await generate_json(request, body)
        except InjectedDisconnect:
            return DroppedResponse()
        return JSONResponse([response] if as_list else response, headers=headers)

    def stream(request: Request, body: GenerateRequest) -> StreamingResponse:
        generator = generator_of(request)
        prepared = generator.prepare(body.inputs, body.parameters, request.headers)
        p = body.parameters

        def event(data: dict[str, Any]) -> bytes:
            return f"data:{json.dumps(data)}\n\n".encode()

        def token_event(index: int, token: Token, final: Outcome | None) -> bytes:
            data: dict[str, Any] = {
                "index": index,
                "token": token_json(token.id, token.text, token.logprob, token.special),
                "top_tokens": None,
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
                    }
            return event(data)

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
                log.exception("generation failed mid-stream")
                yield event({"error": str(error), "error_type": "generation"})

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )

    @app.post("/generate")
    async def generate(request: Request, body: GenerateRequest) -> Response:
        return await generate_or_drop(request, body, as_list=False)

    @app.post("/generate_stream")
    async def generate_stream(request: Request, body: GenerateRequest) -> Response:
        return stream(request, body)

    @app.post("/")
    async def compat_generate(request: Request, body: GenerateRequest) -> Response:
        if body.stream:
            return stream(request, body)
        return await generate_or_drop(request, body, as_list=True)

    @app.get("/info")
    async def info(request: Request) -> dict[str, Any]:
        loaded = generator_of(request).backend
        return {
            "model_id": loaded.model_id,
            "model_sha": None,
            "model_dtype": f"torch.{loaded.dtype}" if loaded.name == "gguf" else loaded.dtype,
            "model_device_type": "cpu",
            "model_pipeline_tag": "text-generation",
            "max_concurrent_requests": settings.max_concurrent_requests,
            "max_best_of": 1,
            "max_stop_sequences": settings.max_stop_sequences,
            "max_input_tokens": settings.max_input_tokens,
            "max_input_length": settings.max_input_tokens,
            "max_total_tokens": settings.max_total_tokens,
            "validation_workers": 1,
            "max_client_batch_size": 1,
            "router": "tandem-engine",
            "version": VERSION,
            "sha": None,
            "docker_label": None,
            "backend": loaded.name,
        }

    @app.get("/health")
    async def health(request: Request) -> Response:
        if getattr(request.app.state, "generator", None) is None:
            return JSONResponse({"error": "unhealthy", "error_type": "healthcheck"}, 503)
        return Response(status_code=200)

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.post("/tokenize")
    async def tokenize(request: Request, body: GenerateRequest) -> list[dict[str, Any]]:
        loaded = generator_of(request).backend
        return [
            {"id": t.id, "text": t.text, "start": t.start, "stop": t.stop}
            for t in loaded.tokenize(body.inputs)
        ]

    from services.engine.openai_routes import router as openai_router

    app.include_router(openai_router)
    return app
