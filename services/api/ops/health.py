"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from services.api.ops.readiness import readiness

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (no dependency is checked)."""
    return {"status": "ok"}


@router.get(
    "/readyz", responses={503: {"description": "A dependency or a queue consumer is missing"}}
)
async def readyz(request: Request) -> JSONResponse:
    """Postgres and Redis answer and each queue has a consumer; else 503 naming what is not."""
    state = request.app.state
    result: dict[str, Any] = await run_in_threadpool(
        readiness, state.settings, state.redis, state.consumers
    )
    return JSONResponse(result, status_code=200 if result["ready"] else 503)
