"""A job's live answer on a real Redis: what the executor publishes, what a reader keeps."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence

import pytest
import redis
import redis.asyncio as aioredis

from shared.engines.base import Generation, ModelProfile, StreamChunk
from shared.jobs.answer_stream import Follower, Publisher, follow, generate_streamed, key
from tests.services.engine.server_fixtures import free_port


def entries(client: redis.Redis[bytes], job_id: uuid.UUID) -> list[dict[str, str]]:
    return [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _, fields in client.xrange(key(job_id))
    ]


def test_publisher_coalesces_pieces_and_numbers_them_by_offset(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    job_id = uuid.uuid4()
    publisher = Publisher(client, job_id, flush_s=3600)
    for piece in ("The ", "answer ", "is"):
        publisher.add(piece)  # the first piece goes out at once, the rest waits
    publisher.flush()
    publisher.add(" 42.")
    publisher.flush()
    published = entries(client, job_id)
    assert [(e["o"], e["t"]) for e in published] == [
        ("0", "The "),
        ("4", "answer is"),
        ("13", " 42."),
    ]
    assert {e["a"] for e in published} == {publisher.run}
    assert 0 < client.ttl(key(job_id)) <= 3600


def test_follower_keeps_one_text_over_redelivered_runs() -> None:
    follower = Follower()
    first_run = [{"o": "0", "t": "Twelve plus "}, {"o": "12", "t": "thirty"}]
    assert follower.take(first_run) == "Twelve plus thirty"
    # The step ran again (its worker was killed): it streams from the start once more.
    second_run = [{"o": "0", "t": "Twelve "}, {"o": "7", "t": "plus thirty is 42."}]
    assert follower.take(second_run) == " is 42."
    assert follower.text == "Twelve plus thirty is 42." and not follower.diverged


def test_follower_skips_gaps_and_stops_where_runs_disagree() -> None:
    follower = Follower()
    assert follower.take([{"o": "5", "t": "late"}]) == ""  # what precedes it was missed
    assert follower.take([{"o": "0", "t": "abc"}, {"o": "3", "t": "def"}]) == "abcdef"
    assert follower.take([{"o": "0", "t": "abX"}, {"o": "3", "t": "ghi"}]) == ""
    assert follower.diverged and follower.text == "abcdef"


async def test_follow_reads_only_what_is_new(redis_url: str) -> None:
    job_id = uuid.uuid4()
    publisher = Publisher(redis.Redis.from_url(redis_url), job_id, flush_s=0)
    reader = aioredis.Redis.from_url(redis_url)
    follower = Follower()
    assert await follow(reader, job_id, follower) == ("", "0")  # nothing yet: no stream at all
    publisher.add("one ")
    new, after = await follow(reader, job_id, follower)
    publisher.add("two")
    assert new == "one " and (await follow(reader, job_id, follower, after))[0] == "two"
    await reader.connection_pool.disconnect()


class StreamingEngine:
    """An engine double: streams ``pieces``, then the final generation."""

    profile = ModelProfile(name="double", parameters=1)

    def __init__(self, pieces: Sequence[str], final: bool = True) -> None:
        self.pieces, self.final = pieces, final

    async def generate_stream(
        self, prompt: str, *, max_new_tokens: int
    ) -> AsyncIterator[StreamChunk]:
        for piece in self.pieces:
            await asyncio.sleep(0)
            yield StreamChunk(text=piece)
        if self.final:
            text = "".join(self.pieces)
            yield StreamChunk("", Generation(text, "eos_token", 3, len(self.pieces)))


async def test_a_redis_that_fails_stops_the_live_text_not_the_answer() -> None:
    down = redis.Redis(port=free_port(), socket_connect_timeout=0.5)
    publisher = Publisher(down, uuid.uuid4(), flush_s=0)
    engine = StreamingEngine(["4", "2"])
    result = await generate_streamed(engine, "q", max_new_tokens=8, publisher=publisher)  # type: ignore[arg-type]
    assert result.text == "42" and result.generated_tokens == 2


async def test_a_stream_without_its_final_event_is_a_transient_engine_error(
    redis_url: str,
) -> None:
    from shared.engines.errors import TransientEngineError

    publisher = Publisher(redis.Redis.from_url(redis_url), uuid.uuid4())
    engine = StreamingEngine(["4"], final=False)
    with pytest.raises(TransientEngineError, match="final event"):
        await generate_streamed(engine, "q", max_new_tokens=8, publisher=publisher)  # type: ignore[arg-type]
