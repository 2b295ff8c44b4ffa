"""Typed errors of the client: one class per kind of API error code, so a caller catches what
it can act on (``BudgetExceededError``: raise the cap or lower ``max_cost``; ``RateLimitedError``:
wait ``retry_after_s``) instead of reading status codes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx


class TandemClientError(Exception):
    """Anything this client raises on purpose."""


class APIError(TandemClientError):
    """An error answer of the API: ``{"error": {"code", "message", "field"?, ...}}``."""

    def __init__(
        self, status: int, code: str, message: str, field: str | None, details: dict[str, Any]
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.details = details


class AuthenticationError(APIError):
    """The API key is missing, invalid or revoked."""


class PermissionDeniedError(APIError):
    """The key may not do this."""


class NotFoundError(APIError):
    """No such job (or not this tenant's), model or route."""


class InvalidRequestError(APIError):
    """The request is malformed; ``field`` names the culprit."""


class PayloadTooLargeError(APIError):
    """The question or the body is over the API's limit."""


class ConflictError(APIError):
    """The request conflicts with the resource's state."""


class IdempotencyConflictError(ConflictError):
    """The Idempotency-Key was first used for a different request."""


class BudgetExceededError(APIError):
    """The job's worst-case cost does not fit the budget; nothing was queued or held."""

    def _amount(self, name: str) -> Decimal:
        return Decimal(str(self.details.get(name, 0)))

    @property
    def cap(self) -> Decimal:
        return self._amount("cap")

    @property
    def spent(self) -> Decimal:
        return self._amount("spent")

    @property
    def reserved(self) -> Decimal:
        return self._amount("reserved")

    @property
    def requested(self) -> Decimal:
        return self._amount("requested")


class RateLimitedError(APIError):
    """Too many requests or concurrent jobs; retry after ``retry_after_s``."""

    @property
    def retry_after_s(self) -> int | None:
        value = self.details.get("retry_after_s")
        return int(value) if value is not None else None


class ServiceUnavailableError(APIError):
    """A backing service or engine is down for now; retrying later may succeed."""


class JobFailedError(APIError):
    """The job (or an engine call it made) failed."""


class JobTimeoutError(APIError):
    """The API stopped waiting for the job; it may still finish."""


class ServerError(APIError):
    """An unexpected error of the API."""


class WaitTimeout(TandemClientError):
    """``wait`` gave up before the job was over (the job goes on)."""


class InvalidSignature(TandemClientError):
    """A webhook whose signature or timestamp does not check out: do not trust its body."""


# The API's error codes and the class each one raises.
ERRORS: dict[str, type[APIError]] = {
    "unauthorized": AuthenticationError,
    "key_expired": AuthenticationError,
    "forbidden": PermissionDeniedError,
    "not_found": NotFoundError,
    "model_not_found": NotFoundError,
    "invalid_request": InvalidRequestError,
    "key_cap_above_tenant": InvalidRequestError,
    "levels_not_calibrated": InvalidRequestError,
    "bad_request": InvalidRequestError,
    "method_not_allowed": InvalidRequestError,
    "payload_too_large": PayloadTooLargeError,
    "conflict": ConflictError,
    "invalid_transition": ConflictError,
    "idempotency_key_reused": IdempotencyConflictError,
    "price_exists": ConflictError,
    "budget_exceeded": BudgetExceededError,
    "key_budget_exhausted": BudgetExceededError,  # the key's own cap (``limit``: key_cap)
    "rate_limited": RateLimitedError,
    "transient_error": ServiceUnavailableError,
    "engine_unavailable": ServiceUnavailableError,
    "engine_error": JobFailedError,
    "job_failed": JobFailedError,
    "job_timeout": JobTimeoutError,
    "internal_error": ServerError,
    "configuration_error": ServerError,
}


def error_from(response: httpx.Response) -> APIError:
    """The typed error of an error response (read: a streamed one must be read first)."""
    try:
        body = response.json().get("error")
    except (ValueError, AttributeError):
        body = None
    if not isinstance(body, dict):
        body = {"code": "http_error", "message": response.text[:500] or response.reason_phrase}
    details = dict(body)
    code = str(details.pop("code", "http_error"))
    message = str(details.pop("message", ""))
    field = details.pop("field", None)
    kind = ERRORS.get(code) or (ServerError if response.status_code >= 500 else APIError)
    return kind(response.status_code, code, message, field, details)
