"""A job's answer as the executor generates it: a Redis stream beside the job's events.

Jobs whose answer someone follows live (``jobs.stream_answer``: a streamed chat completion, or
a job submitted with ``stream_answer``) have their executor call streamed from the engine; the
executor appends the text to the Redis stream ``tandem:answer:<job id>`` as it arrives, a few
tokens per entry, and the API turns the entries into deltas for its client. Everything else
about the job is unchanged: the ``answer`` event and the job row, written when the call is
recorded, stay the answer of record, and a reader that missed entries (it came late, Redis
restarted, the stream expired) just waits for them.

A step can run more than once (a redelivered message, a retried call), and each run streams
from the start again. Every entry therefore carries its run (``a``) and the offset of its text
in that run's output (``o``), and :class:`Follower` keeps one consistent text: it takes from any
run the part beyond what it already has, provided the overlap agrees, and stops following when
two runs disagree (sampled text differs between runs): what it sent stays sent, the rest comes
from the answer of record.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial

import redis
import redis.asyncio as aioredis

from shared.engines.base import EngineClient, Generation
from shared.engines.errors import engine_error
from shared.settings import get_common_settings

# An answer is a few hundred entries at most; the cap only bounds a runaway.
MAX_ENTRIES = 4096
# Long enough for any reader of a finished job; short enough that nothing accumulates.
TTL_S = 3600
# Entries read per call: a whole answer in one read, usually.
READ_COUNT = 1024


@lru_cache(maxsize=1)
def publisher_client() -> redis.Redis[bytes]:
    """This process's Redis client for publishing (redis-py reopens its pool after a fork)."""
    return redis.Redis.from_url(get_common_settings().redis_url, socket_timeout=2.0)


def key(job_id: uuid.UUID | str) -> str:
    return f"tandem:answer:{job_id}"


@dataclass
class Publisher:
    """Appends one run's text to a job's answer stream, ``flush_s`` apart at most often, so a
    fast engine costs a few entries per answer, not one per token."""

    client: redis.Redis[bytes]
    job_id: uuid.UUID
    flush_s: float = 0.05
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    offset: int = 0  # of the text not yet published, in this run's output
    pending: str = ""
    flushed_at: float = -math.inf  # the first piece goes out at once

    def add(self, text: str) -> None:
        self.pending += text
        if self.pending and time.monotonic() - self.flushed_at >= self.flush_s:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        stream = key(self.job_id)
        entry = {"a": self.run, "o": str(self.offset), "t": self.pending}
        pipe = self.client.pipeline(transaction=False)
        pipe.xadd(stream, entry, maxlen=MAX_ENTRIES, approximate=True)
        pipe.expire(stream, TTL_S)
        pipe.execute()
        self.offset += len(self.pending)
        self.pending = ""
        self.flushed_at = time.monotonic()


async def generate_streamed(
    client: EngineClient,
    prompt: str,
    *,
    max_new_tokens: int,
    publisher: Publisher,
) -> Generation:
    """The engine call of a followed answer: streamed, each piece published as it comes.

    Publishing is best effort: a Redis that fails mid-answer stops the live text, never the
    job, whose answer is recorded from the engine's own final event."""
    live = True
    async for chunk in client.generate_stream(prompt, max_new_tokens=max_new_tokens):
        if chunk.final is not None:
            if live:
                _publish(publisher.flush)
            return chunk.final
        if live and chunk.text:
            live = _publish(partial(publisher.add, chunk.text))
    raise engine_error(
        "the stream ended without its final event",
        engine=client.profile.name,
        route="stream",
        reason="protocol",
        transient=True,
    )


def _publish(action: Callable[[], None]) -> bool:
    try:
        action()
    except redis.RedisError:
        return False
    return True


@dataclass
class Follower:
    """The text of a job's answer stream, consistent across the runs that wrote it."""

    text: str = ""
    diverged: bool = False

    def take(self, entries: Sequence[Mapping[str, str]]) -> str:
        """What ``entries`` add to :attr:`text` (appended to it), in order."""
        new = ""
        for entry in entries:
            if self.diverged:
                break
            offset, piece = int(entry["o"]), entry["t"]
            have = len(self.text)
            if offset > have:
                continue  # a gap: what precedes it was missed; a later run may fill it
            overlap = self.text[offset : offset + len(piece)]
            if not piece.startswith(overlap):
                self.diverged = True  # another run wrote something else
                break
            added = piece[have - offset :]
            self.text += added
            new += added
        return new


async def follow(
    client: aioredis.Redis[bytes], job_id: uuid.UUID | str, follower: Follower, after: str = "0"
) -> tuple[str, str]:
    """One non-blocking read of the entries after ``after``: (new text, last entry id)."""
    reply = await client.xread({key(job_id): after}, count=READ_COUNT)
    if not reply:
        return "", after
    entries = reply[0][1]
    decoded = [{_str(k): _str(v) for k, v in fields.items()} for _, fields in entries]
    return follower.take(decoded), _str(entries[-1][0])


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
