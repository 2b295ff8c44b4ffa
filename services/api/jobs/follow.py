"""Following a job while it runs: its events from Postgres and, when someone follows its answer
live, the executor's text from Redis (:mod:`shared.jobs.answer_stream`).

Both the job event stream (``GET /v1/jobs/{id}/events``) and a streamed chat completion read a
job through :func:`follow_job`. Events are read every ``poll_interval_s``; the live text, while
the executor may still write it, every ``answer_poll_interval_s``, and always after the events
of the same round, so text published before the ``answer`` event committed comes before it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis
from starlette.concurrency import run_in_threadpool

from services.api.jobs.service import events_since
from services.api.settings import ApiSettings
from shared.db.models import JobStatus
from shared.jobs.answer_stream import Follower, follow

log = logging.getLogger(__name__)


class ClientLeft(Exception):
    """The client closed its stream before the job was over."""


class FollowTimeout(Exception):
    """The job outlived the follower's ``timeout_s``."""


class LiveAnswer:
    """The executor's text of one job as it is generated.

    Best effort: a Redis that fails ends the live text, never the stream that follows the job,
    whose answer comes from the job's ``answer`` event either way."""

    def __init__(self, client: aioredis.Redis[bytes], job_id: uuid.UUID) -> None:
        self.client, self.job_id = client, job_id
        self.follower, self.after = Follower(), "0"
        self.active = True  # until the answer event, or a failure

    async def read(self) -> str:
        if not self.active:
            return ""
        try:
            new, self.after = await follow(self.client, self.job_id, self.follower, self.after)
        except (redis.RedisError, OSError):
            log.warning("live answer of job %s unavailable", self.job_id, exc_info=True)
            self.active = False
            return ""
        return new


@dataclass(frozen=True)
class LiveText:
    """Text the executor generated since the last one."""

    text: str


@dataclass(frozen=True)
class Over:
    """The job is over (or gone: ``status`` None) and every event was read."""

    status: str | None


async def follow_job(
    settings: ApiSettings,
    job_id: uuid.UUID,
    *,
    after: int = 0,
    live: LiveAnswer | None = None,
    disconnected: Callable[[], Awaitable[bool]],
    timeout_s: float | None = None,
) -> AsyncIterator[dict[str, Any] | LiveText | Over]:
    """Each event after ``after`` (as :func:`events_since` reads it) and the live text, in the
    order they happened, then :class:`Over`. Raises :class:`ClientLeft` when the client left,
    :class:`FollowTimeout` after ``timeout_s``."""
    deadline = math.inf if timeout_s is None else time.monotonic() + timeout_s
    cursor, polled = after, -math.inf
    while True:
        rows: list[dict[str, Any]] = []
        now = time.monotonic()
        over: Over | None = None
        if now - polled >= settings.poll_interval_s:
            rows, status = await run_in_threadpool(events_since, settings, job_id, cursor)
            polled = now
            if not rows and (status is None or JobStatus(status).terminal):
                over = Over(status)
        if live is not None and (text := await live.read()):
            yield LiveText(text)
        for row in rows:
            cursor = row["id"]
            if live is not None and row["kind"] == "answer":
                live.active = False  # all of it was published before this event
            yield row
        if over is not None:
            yield over
            return
        if await disconnected():
            raise ClientLeft
        if time.monotonic() > deadline:
            raise FollowTimeout
        if not rows:
            following = live is not None and live.active
            interval = settings.answer_poll_interval_s if following else settings.poll_interval_s
            await asyncio.sleep(interval)


async def event_stream(
    settings: ApiSettings,
    job_id: uuid.UUID,
    after: int,
    disconnected: Callable[[], Awaitable[bool]],
    live: LiveAnswer | None = None,
) -> AsyncIterator[dict[str, str]]:
    """SSE messages of the job's events after ``after``, ending with ``done`` once the job is
    over and every event was sent. With ``live``, the executor's text comes as it is generated
    in ``answer_delta`` events; they carry no id (a resumed stream starts after the last event,
    and the answer event holds the whole answer)."""
    try:
        async for item in follow_job(
            settings, job_id, after=after, live=live, disconnected=disconnected
        ):
            if isinstance(item, LiveText):
                yield {"event": "answer_delta", "data": json.dumps({"text": item.text})}
            elif isinstance(item, Over):
                yield {"event": "done", "data": json.dumps({"status": item.status})}
            else:
                yield {"id": str(item["id"]), "event": item["kind"], "data": json.dumps(item)}
    except ClientLeft:
        return
