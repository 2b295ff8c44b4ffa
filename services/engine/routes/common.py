"""What the routers share: the request's generator and the server-sent event framing."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from services.engine.generation import Generator

EVENT_STREAM = "text/event-stream"
STREAM_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def generator_of(request: Request) -> Generator:
    """The app's generator (built by the lifespan once the backend is loaded)."""
    generator: Generator = request.app.state.generator
    return generator


def sse_event(data: dict[str, Any], *, space: bool = False) -> bytes:
    """One server-sent event; TGI writes ``data:{...}``, OpenAI and vLLM ``data: {...}``."""
    return f"data:{' ' if space else ''}{json.dumps(data)}\n\n".encode()
