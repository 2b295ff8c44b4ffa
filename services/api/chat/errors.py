"""How a chat completion, whole or streamed, can end without an answer."""

from __future__ import annotations

from shared.errors import TandemError


class JobTimeout(TandemError):
    code = "job_timeout"
    http_status = 504


class JobFailed(TandemError):
    code = "job_failed"
    http_status = 502
