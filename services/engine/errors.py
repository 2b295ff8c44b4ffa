"""TGI's error body ``{"error", "error_type"}`` for every failure the server answers.

TGI documents the errors of ``/generate_stream`` as an event stream (the body is one event
carrying the error), so a stream client reads an error the way it reads tokens; every other
route answers JSON. Unknown routes and methods get the same body instead of FastAPI's
``{"detail"}``, so a TGI client can parse whatever comes back.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from services.engine.metrics import EngineMetrics
from services.engine.routes.common import EVENT_STREAM, sse_event
from services.engine.schemas import TGIError

EVENT_STREAM_ERROR_PATHS = frozenset({"/generate_stream"})


def error_response(
    request: Request,
    status: int,
    message: str,
    error_type: str,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {"error": message, "error_type": error_type}
    if request.url.path in EVENT_STREAM_ERROR_PATHS:
        return Response(sse_event(body), status, headers, media_type=EVENT_STREAM)
    return JSONResponse(body, status, headers)


def validation_message(error: RequestValidationError) -> str:
    """TGI's wording for a body that does not parse: where, then what."""
    first = error.errors()[0] if error.errors() else {"msg": "invalid body"}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    return f"Input validation error: {where}: {first.get('msg')}".replace(": :", ":")


def install_error_handlers(app: FastAPI, metrics: EngineMetrics) -> None:
    @app.exception_handler(TGIError)
    async def tgi_error(request: Request, error: TGIError) -> Response:
        metrics.count("tgi_request_failure", err=error.error_type)
        return error_response(request, error.status, error.message, error.error_type)

    @app.exception_handler(RequestValidationError)
    async def bad_body(request: Request, error: RequestValidationError) -> Response:
        metrics.count("tgi_request_failure", err="validation")
        return error_response(request, 422, validation_message(error), "validation")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        if error.status_code == 400:
            # A body that is not JSON: to TGI's clients, an input validation error like others.
            metrics.count("tgi_request_failure", err="validation")
            message = f"Input validation error: {error.detail}"
            return error_response(request, 422, message, "validation")
        kind = "not_found" if error.status_code == 404 else "http"
        return error_response(
            request, error.status_code, str(error.detail), kind, dict(error.headers or {})
        )
