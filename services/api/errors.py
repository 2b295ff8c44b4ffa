"""API-only errors and the ONE handler that renders every error as {"error": {...}}.

FastAPI's own validation errors and Starlette's HTTP errors (404 route, 405 method) are mapped
into the same shape; anything unexpected is logged and answered as a 500 in that shape too, but
every input a client can send is meant to end in a 4xx before that.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.errors import TandemError, TransientError, ValidationFailed

log = logging.getLogger(__name__)


class PayloadTooLarge(TandemError):
    code = "payload_too_large"
    http_status = 413


class RateLimited(TandemError):
    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after_s: int, **details: Any) -> None:
        super().__init__(message, retry_after_s=retry_after_s, **details)
        self.retry_after_s = retry_after_s


class JobTimeout(TandemError):
    code = "job_timeout"
    http_status = 504


class JobFailed(TandemError):
    code = "job_failed"
    http_status = 502


class HttpError(TandemError):
    """A routing-level error from Starlette (unknown path, wrong method)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        body["code"] = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(
            self.status, "http_error"
        )
        return body


def error_response(exc: TandemError) -> JSONResponse:
    status = exc.status if isinstance(exc, HttpError) else exc.http_status
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after_s)
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse({"error": exc.to_dict()}, status_code=status, headers=headers)


def _field_of(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


def validation_error(exc: RequestValidationError | ValidationError) -> TandemError:
    errors = exc.errors()
    if not errors:
        return ValidationFailed("invalid request")
    first = errors[0]
    field = _field_of(tuple(first.get("loc", ())))
    message = str(first.get("msg", "invalid value"))
    if first.get("type") == "json_invalid":
        message = "the request body is not valid JSON"
    elif field:
        message = f"{field}: {message}"
    problems = [
        {"field": _field_of(tuple(e.get("loc", ()))), "message": str(e.get("msg", ""))}
        for e in errors[:10]
    ]
    return ValidationFailed(message, field=field, problems=problems)


def install_error_handlers(app: FastAPI) -> None:
    async def on_tandem(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, TandemError)
        if exc.http_status >= 500:
            log.error("request failed: %s", exc.message)
        return error_response(exc)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(validation_error(exc))

    async def on_model_validation(_: Request, exc: Exception) -> JSONResponse:
        # A model built inside a route from already-accepted input (e.g. the chat front door).
        assert isinstance(exc, ValidationError)
        return error_response(validation_error(exc))

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return error_response(HttpError(exc.status_code, str(exc.detail)))

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, (OperationalError, RedisConnectionError, RedisTimeoutError)):
            log.warning("dependency unavailable: %s", exc)
            return error_response(TransientError("a backing service is unavailable; retry shortly"))
        log.exception("unhandled error", exc_info=exc)
        return error_response(TandemError("internal error; the request was not completed"))

    app.add_exception_handler(TandemError, on_tandem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(ValidationError, on_model_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
