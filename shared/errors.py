"""One error hierarchy for the whole system.

Each error carries a stable machine ``code``, an HTTP status and a message that says what was
wrong and what to do. The API renders any :class:`TandemError` with one handler into
``{"error": {"code", "message", "field"?, ...details}}``; workers use :class:`TransientError`
to decide what to retry.
"""

from __future__ import annotations

from typing import Any, ClassVar


class TandemError(Exception):
    code: ClassVar[str] = "internal_error"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        body.update(self.details)
        return body


class TransientError(TandemError):
    """A failure that may succeed when retried (engine overloaded, connection refused, ...)."""

    code = "transient_error"
    http_status = 503


class NotFoundError(TandemError):
    code = "not_found"
    http_status = 404


class ValidationFailed(TandemError):
    code = "invalid_request"
    http_status = 422


class ConfigurationError(TandemError):
    code = "configuration_error"
    http_status = 500
