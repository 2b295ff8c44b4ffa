"""The broker transport's ack bookkeeping (shared.broker) on a real Redis: one hash entry per
unacked message, gone on ack, and a killed consumer's message put back after the visibility
timeout."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from kombu.connection import Connection
from kombu.transport.redis import Channel as KombuChannel
from kombu.utils.json import dumps, loads

from shared.broker import TRANSPORT, Channel, backlog

VISIBILITY_S = 1


@pytest.fixture
def queue_name() -> str:
    return f"broker-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def connection(redis_url: str) -> Iterator[Connection]:
    with Connection(
        redis_url,
        transport=TRANSPORT,
        transport_options={"visibility_timeout": VISIBILITY_S, "unacked_restore_throttle": 1},
    ) as conn:
        yield conn


def unacked(redis_url: str) -> dict[bytes, list[Any]]:
    client = redis.Redis.from_url(redis_url)
    return {tag: loads(entry) for tag, entry in client.hgetall(KombuChannel.unacked_key).items()}


def test_a_delivery_is_one_hash_entry_with_its_time_until_acked(
    connection: Connection, redis_url: str, queue_name: str
) -> None:
    queue = connection.SimpleQueue(queue_name)
    queue.put({"job_id": "a"})
    before = time.time()
    message = queue.get(timeout=5)
    entries = unacked(redis_url)
    assert list(entries) == [message.delivery_tag.encode()]
    (entry,) = entries.values()
    assert entry[0]["properties"]["delivery_tag"] == message.delivery_tag
    assert before <= float(entry[3]) <= time.time()
    index = redis.Redis.from_url(redis_url).zcard(KombuChannel.unacked_index_key)
    assert index == 0  # no sorted-set index is written
    message.ack()
    assert unacked(redis_url) == {}
    queue.close()


def test_a_killed_consumers_message_is_delivered_again_after_the_visibility_timeout(
    connection: Connection, redis_url: str, queue_name: str
) -> None:
    connection.SimpleQueue(queue_name).put({"job_id": "b"})
    # A consumer that takes the message and dies without acking or restoring (kill -9).
    script = (
        "import os, sys\n"
        "from kombu import Connection\n"
        f"conn = Connection(sys.argv[1], transport={TRANSPORT!r})\n"
        "queue = conn.SimpleQueue(sys.argv[2])\n"
        "queue.get(timeout=5)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    died = subprocess.run([sys.executable, "-c", script, redis_url, queue_name], check=False)
    assert died.returncode == -9
    assert len(unacked(redis_url)) == 1
    queue = connection.SimpleQueue(queue_name)
    channel = queue.consumer.channel
    assert isinstance(channel, Channel)
    channel.qos.restore_visible(num=None, interval=1)
    assert len(unacked(redis_url)) == 1  # not yet older than the visibility timeout
    deadline = time.monotonic() + 10
    while unacked(redis_url) and time.monotonic() < deadline:
        time.sleep(0.2)
        channel.qos.restore_visible(num=None, interval=1)
    message = queue.get(timeout=5)
    assert message.payload == {"job_id": "b"}
    assert message.delivery_info["redelivered"] is True
    message.ack()
    assert unacked(redis_url) == {}
    queue.close()


def test_entries_of_stock_kombu_are_still_restored_through_its_index(
    connection: Connection, redis_url: str, queue_name: str
) -> None:
    """A message delivered by a worker on stock kombu (during a rolling upgrade) comes back."""
    client = redis.Redis.from_url(redis_url)
    queue = connection.SimpleQueue(queue_name)
    queue.put({"job_id": "c"})
    raw = client.rpop(queue_name)
    assert raw is not None
    payload = loads(raw)
    tag = payload["properties"]["delivery_tag"]
    client.hset(KombuChannel.unacked_key, tag, dumps([payload, "", queue_name]))
    client.zadd(KombuChannel.unacked_index_key, {tag: time.time() - 10 * VISIBILITY_S})
    channel = queue.consumer.channel
    channel.qos.restore_visible(num=None, interval=1)
    assert unacked(redis_url) == {}
    assert client.zcard(KombuChannel.unacked_index_key) == 0
    message = queue.get(timeout=5)
    assert message.payload == {"job_id": "c"}
    message.ack()
    queue.close()


def test_a_queue_s_backlog_counts_its_waiting_and_its_unacked_messages(
    connection: Connection, redis_url: str, queue_name: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    other = connection.SimpleQueue(f"{queue_name}-other")
    other.put({"job_id": "elsewhere"})
    elsewhere = other.get(timeout=5)  # in flight, but on another queue
    queue = connection.SimpleQueue(queue_name)
    assert backlog(client, queue_name) == 0
    queue.put({"job_id": "d"})
    queue.put({"job_id": "e"})
    assert backlog(client, queue_name) == 2
    message = queue.get(timeout=5)  # delivered, running: still the queue's
    assert backlog(client, queue_name) == 2
    message.ack()
    assert backlog(client, queue_name) == 1
    queue.get(timeout=5).ack()
    assert backlog(client, queue_name) == 0
    elsewhere.ack()
    queue.close()
    other.close()


def test_every_celery_app_uses_this_transport() -> None:
    from shared.celery_base import producer_app

    app = producer_app()
    with app.connection_for_write() as conn:
        assert conn.transport_cls == TRANSPORT
        assert conn.transport.Channel is Channel
    app.close()
