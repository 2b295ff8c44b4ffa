"""What each client operation sends and how its answer is read, shared by the sync and the
async client so that the two differ only in how they wait."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypedDict, TypeVar

import httpx
from httpx_sse import ServerSentEvent
from pydantic import BaseModel

from services.api.jobs.schemas import CancelOut, JobAccepted, JobAudit, JobOut
from shared.money import plain
from tandem.client.errors import TandemClientError, error_from

DEFAULT_URL = "http://127.0.0.1:8000"
# The API pings an idle event stream every 15 s: a read this long without a byte is a dead
# connection, resumed after the last event.
STREAM_READ_S = 30.0
# Reconnections in a row that brought no event before the stream is given up.
MAX_RECONNECTS = 3

T = TypeVar("T", bound=BaseModel)


class SubmitOptions(TypedDict, total=False):
    """``POST /v1/jobs`` fields beyond the question and domain (see the API's JobCreate)."""

    policy: str
    level: int
    levels: list[int]
    max_levels: int
    max_answer_tokens: int
    max_cost: Decimal | str
    allow_shrink: bool
    metadata: dict[str, Any]
    webhook_url: str
    stream_answer: bool  # the event stream then carries the text as it is generated


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    model: type[T]
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def result(self, response: httpx.Response) -> T:
        if response.is_error:
            raise error_from(response)
        return self.model.model_validate(response.json())


ANSWER_DELTA = "answer_delta"


@dataclass(frozen=True)
class Event:
    """One message of a job's event stream; the last one is ``done`` with the final status."""

    id: int | None
    kind: str
    status: str | None
    level: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None

    @property
    def done(self) -> bool:
        return self.kind == "done"


def settings_from_env(base_url: str | None, api_key: str | None) -> tuple[str, str]:
    url = base_url or os.environ.get("TANDEM_URL") or DEFAULT_URL
    key = api_key or os.environ.get("TANDEM_API_KEY")
    if not key:
        raise TandemClientError("no API key: pass api_key or set TANDEM_API_KEY")
    return url.rstrip("/"), key


def auth_headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def submit(
    question: str, domain: str, idempotency_key: str | None, options: SubmitOptions
) -> Call[JobAccepted]:
    body: dict[str, Any] = {"question": question, "domain": domain, **options}
    if "max_cost" in body:
        body["max_cost"] = plain(Decimal(str(body["max_cost"])))
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    return Call("POST", "/v1/jobs", JobAccepted, body, headers)


def get(job_id: uuid.UUID | str) -> Call[JobOut]:
    return Call("GET", f"/v1/jobs/{job_id}", JobOut)


def audit(job_id: uuid.UUID | str) -> Call[JobAudit]:
    return Call("GET", f"/v1/jobs/{job_id}/audit", JobAudit)


def cancel(job_id: uuid.UUID | str) -> Call[CancelOut]:
    return Call("POST", f"/v1/jobs/{job_id}/cancel", CancelOut)


def events_path(job_id: uuid.UUID | str) -> str:
    return f"/v1/jobs/{job_id}/events"


def resume_headers(after: int | None) -> dict[str, str]:
    return {"Last-Event-ID": str(after)} if after else {}


def stream_timeout(remaining_s: float | None) -> httpx.Timeout:
    read = STREAM_READ_S if remaining_s is None else max(min(remaining_s, STREAM_READ_S), 0.05)
    return httpx.Timeout(10.0, read=read)


def event_of(message: ServerSentEvent) -> Event:
    data = json.loads(message.data) if message.data else {}
    if message.event == "done":
        return Event(id=None, kind="done", status=data.get("status"))
    if message.event == ANSWER_DELTA:  # the executor's text since the last one: {"text"}
        return Event(id=None, kind=ANSWER_DELTA, status=None, data=data)
    created = data.get("created_at")
    return Event(
        id=int(message.id) if message.id else None,
        kind=message.event,
        status=data.get("status"),
        level=data.get("level"),
        data=data.get("data") or {},
        created_at=datetime.fromisoformat(created) if created else None,
    )
