"""Structured logs: one JSON object per line, carrying the job, tenant and trace in context.

Context is held in ``contextvars`` so it follows a task or a request through every function it
calls; :class:`shared.celery_base.TandemTask` binds ``job_id`` from each message it runs. The
OpenTelemetry trace and span ids of the current span (:mod:`shared.tracing`) are added to
every line, so one job's lines can be found across services by its trace id.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from shared.settings import CommonSettings
from shared.tracing import current_ids

# The user-info part of any URL (``scheme://user:password@host``): webhook URLs, database and
# broker URLs and whatever a library logs about its requests may carry credentials.
_URL_CREDENTIALS = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)[^\s/?#@\"']+@")


def redact(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced by ``***``."""
    return _URL_CREDENTIALS.sub(r"\g<scheme>***@", text)


_context: ContextVar[dict[str, str]] = ContextVar("tandem_log_context", default={})  # noqa: B039


@contextmanager
def log_context(**values: object) -> Iterator[None]:
    """Add fields (job_id, tenant_id, trace_id ...) to every log line inside the block."""
    token = _context.set({**_context.get(), **{k: str(v) for k, v in values.items() if v}})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**values: object) -> None:
    """Add fields for the rest of the current context: a task (whose :func:`log_context` block
    ends it) or a request (each runs in its own asyncio task, so nothing leaks to the next)."""
    _context.set({**_context.get(), **{k: str(v) for k, v in values.items() if v}})


def current_context() -> dict[str, str]:
    return dict(_context.get())


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "service": self.service,
            "message": record.getMessage(),
            **_context.get(),
            **current_ids(),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(line, default=str))


class ContextTextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        context = {**_context.get(), **current_ids()}
        if context:
            base += " " + " ".join(f"{k}={v}" for k, v in sorted(context.items()))
        return redact(base)


def configure_logging(service: str, settings: CommonSettings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_json:
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(
            ContextTextFormatter("%(asctime)s %(levelname)s [%(name)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
