"""API-only errors and the ONE handler that renders every error as {"error": {...}}.

FastAPI's own validation errors and Starlette's HTTP errors (404 route, 405 method) are mapped
into the same shape; anything unexpected is logged and answered as a 500 in that shape too, but
every input a client can send is meant to end in a 4xx before that.

The OpenAI routes (``/v1/chat/...``, ``/v1/models``) answer in OpenAI's shape instead, with the
statuses its SDK maps to its exception classes: see :func:`openai_error_response`.
"""

from __future__ import annotations

import logging
from typing import Any

from asyncpg.exceptions import PostgresConnectionError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import InterfaceError as SQLAlchemyInterfaceError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.errors import TandemError, TransientError, ValidationFailed

log = logging.getLogger(__name__)

# A backing service that cannot be reached: a 503 the client may retry, never a 500.
DEPENDENCY_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,
    SQLAlchemyInterfaceError,
    RedisConnectionError,
    RedisTimeoutError,
    PostgresConnectionError,
    ConnectionError,
)


class PayloadTooLarge(TandemError):
    code = "payload_too_large"
    http_status = 413


class RateLimited(TandemError):
    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after_s: int, **details: Any) -> None:
        super().__init__(message, retry_after_s=retry_after_s, **details)
        self.retry_after_s = retry_after_s


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


# The routes whose clients are OpenAI's SDK and what is built on it.
OPENAI_PATHS = ("/v1/chat/", "/v1/models")

# Tandem status -> (the status OpenAI answers in that case, OpenAI's error type). OpenAI refuses
# invalid input with 400, and an exhausted budget is its quota error (429 insufficient_quota).
OPENAI_STATUS: dict[int, tuple[int, str]] = {
    400: (400, "invalid_request_error"),
    401: (401, "invalid_request_error"),
    402: (429, "insufficient_quota"),
    403: (403, "invalid_request_error"),
    404: (404, "invalid_request_error"),
    405: (405, "invalid_request_error"),
    409: (409, "invalid_request_error"),
    413: (400, "invalid_request_error"),
    422: (400, "invalid_request_error"),
    429: (429, "requests"),
}
# Tandem code -> OpenAI's code where tools built on the SDK act on the code itself.
OPENAI_CODES = {
    "unauthorized": "invalid_api_key",
    "budget_exceeded": "insufficient_quota",
    "rate_limited": "rate_limit_exceeded",
    "payload_too_large": "context_length_exceeded",
}
# Retrying these repeats a refusal or runs (and charges) another job: the SDK's automatic
# retries are told not to (it honours x-should-retry).
NO_RETRY = frozenset({"budget_exceeded", "idempotency_key_reused", "job_failed", "job_timeout"})


def is_openai_route(request: Request) -> bool:
    return request.url.path.startswith(OPENAI_PATHS)


def openai_error_body(exc: TandemError) -> tuple[int, dict[str, Any]]:
    """The status and ``{"error": {"message", "type", "param", "code", ...}}`` OpenAI would
    send; Tandem's figures (a refusal's cap, spent ...) stay beside them."""
    status = exc.status if isinstance(exc, HttpError) else exc.http_status
    tandem = exc.to_dict()
    if exc.code == "budget_exceeded" and exc.details.get("limit") != "tenant_cap":
        # A per-request max_cost too small for any plan: the request, not the account.
        status, kind = 400, "invalid_request_error"
    else:
        status, kind = OPENAI_STATUS.get(status, (status, "server_error"))
    tandem_code = str(tandem.pop("code"))
    body = {
        "message": tandem.pop("message"),
        "type": kind,
        "param": tandem.pop("field", None),
        "code": OPENAI_CODES.get(tandem_code, tandem_code),
        **tandem,
    }
    return status, body


def openai_error_response(exc: TandemError) -> JSONResponse:
    status, body = openai_error_body(exc)
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after_s)
    if exc.code in NO_RETRY:
        headers["x-should-retry"] = "false"
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _render(request: Request, exc: TandemError) -> JSONResponse:
    return openai_error_response(exc) if is_openai_route(request) else error_response(exc)


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
    async def on_tandem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, TandemError)
        if exc.http_status >= 500:
            cause = exc.__cause__
            log.error(
                "request failed: %s%s", exc.message, f" ({cause!r})" if cause is not None else ""
            )
        return _render(request, exc)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return _render(request, validation_error(exc))

    async def on_model_validation(request: Request, exc: Exception) -> JSONResponse:
        # A model built inside a route from already-accepted input (e.g. the chat front door).
        assert isinstance(exc, ValidationError)
        return _render(request, validation_error(exc))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return _render(request, HttpError(exc.status_code, str(exc.detail)))

    async def on_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("dependency unavailable: %s", exc)
        unavailable = TransientError("a backing service is unavailable; retry shortly")
        return _render(request, unavailable)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return _render(request, TandemError("internal error; the request was not completed"))

    app.add_exception_handler(TandemError, on_tandem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(ValidationError, on_model_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    # Registered by class, not left to the catch-all: Starlette answers the catch-all from its
    # outermost middleware and then re-raises, so the server drops the connection after the
    # response; a client reading a job while Postgres restarts must get a clean 503.
    for unavailable in DEPENDENCY_ERRORS:
        app.add_exception_handler(unavailable, on_unavailable)
    app.add_exception_handler(Exception, on_unexpected)
