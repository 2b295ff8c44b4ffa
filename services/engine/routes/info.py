"""The server's own state: ``/info``, ``/health``, ``/metrics`` and ``/tokenize``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from services.engine.routes.common import generator_of
from services.engine.schemas import GenerateRequest

VERSION = "tandem-engine-0.1.0"
router = APIRouter()


@router.get("/info")
async def info(request: Request) -> dict[str, Any]:
    generator = generator_of(request)
    loaded, settings = generator.backend, generator.settings
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


@router.get("/health")
async def health(request: Request) -> Response:
    if getattr(request.app.state, "generator", None) is None:
        return JSONResponse({"error": "unhealthy", "error_type": "healthcheck"}, 503)
    return Response(status_code=200)


@router.get("/metrics")
async def prometheus(request: Request) -> Response:
    metrics = request.app.state.metrics
    return Response(metrics.render(), media_type="text/plain; version=0.0.4")


@router.post("/tokenize")
async def tokenize(request: Request, body: GenerateRequest) -> list[dict[str, Any]]:
    loaded = generator_of(request).backend
    return [
        {"id": t.id, "text": t.text, "start": t.start, "stop": t.stop}
        for t in loaded.tokenize(body.inputs)
    ]
