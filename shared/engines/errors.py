"""Typed engine errors: which engine, which route, what status and why.

Workers retry :class:`TransientEngineError` (it is a :class:`~shared.errors.TransientError`);
every other :class:`EngineError` is final for the call that raised it. The clients raise the
transient kind only after their own bounded retries are spent, so a task-level retry is the
second line of defence, not the first.
"""

from __future__ import annotations

from typing import Any

from shared.errors import TandemError, TransientError

# Statuses a TGI or OpenAI-compatible engine answers when the same request may succeed later:
# 424 (TGI: generation failed on a shard), 429 (overloaded), 502/504 (a proxy in front of the
# engine), 503 (starting up or unhealthy).
TRANSIENT_STATUSES = frozenset({424, 429, 502, 503, 504})


class EngineError(TandemError):
    """An engine refused or failed a call; the message says what to fix."""

    code = "engine_error"
    http_status = 502

    def __init__(
        self,
        message: str,
        *,
        engine: str,
        route: str,
        status: int | None = None,
        reason: str | None = None,
        **details: Any,
    ) -> None:
        super().__init__(
            f"{engine} {route}: {message}",
            engine=engine,
            route=route,
            status=status,
            reason=reason,
            **details,
        )
        self.engine = engine
        self.route = route
        self.status = status
        self.reason = reason


class TransientEngineError(EngineError, TransientError):
    """Overloaded, unavailable, timed out or unreachable, after the client's own retries."""

    code = "engine_unavailable"
    http_status = 503


def is_transient_status(status: int | None) -> bool:
    return status is not None and status in TRANSIENT_STATUSES


def engine_error(
    message: str,
    *,
    engine: str,
    route: str,
    status: int | None = None,
    reason: str | None = None,
    transient: bool | None = None,
    **details: Any,
) -> EngineError:
    """The right class for a failure: transient when told so or when the status says so."""
    if transient is None:
        transient = is_transient_status(status)
    cls = TransientEngineError if transient else EngineError
    return cls(message, engine=engine, route=route, status=status, reason=reason, **details)
