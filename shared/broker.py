"""The Redis broker transport of every Celery app: kombu's, with cheaper ack bookkeeping.

kombu emulates acks on Redis: a delivered message stays in an "unacked" hash until it is
acked, and a periodic scan puts back what nobody acked within the visibility timeout (the
message of a worker killed with -9). Stock kombu also indexes each delivery in a sorted set by
time, so remembering a delivery costs MULTI, ZADD, HSET, EXEC and forgetting it MULTI, ZREM,
HDEL, EXEC; and it builds a new redis-py client for every command it sends. Here:

- the hash entry carries the delivery time itself, so remembering is one HSET and forgetting
  one HDEL; the scan reads the hash (it holds only messages in flight, a few per worker) and
  restores the entries older than the visibility timeout, under kombu's mutex and through
  kombu's own WATCH transaction, so an ack racing the scan still wins;
- entries written by stock kombu (no delivery time) are still restored through its index;
- each channel sends its commands through one client over its connection pool (redis-py
  clients are thread-safe: every command takes a pooled connection).

Redelivery is unchanged: a message is in the hash from its delivery until its ack, and is put
back at the head of its queue once it has been there longer than the visibility timeout.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from time import time
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads

TRANSPORT = f"{__name__}:Transport"  # the name Celery's broker_transport takes

_DELIVERED_AT = 3  # position of the delivery time in a hash entry: [message, exchange, key, t]


def _restore_fields(entry: bytes | str) -> tuple[Any, str, str]:
    """The message, exchange and routing key of an unacked entry (with or without its time)."""
    fields = loads(bytes_to_str(entry))
    return fields[0], fields[1], fields[2]


class QoS(kombu_redis.QoS):
    def append(self, message: Any, delivery_tag: str) -> None:
        delivery = message.delivery_info
        entry = [message._raw, delivery["exchange"], delivery["routing_key"], time()]
        with self.channel.conn_or_acquire() as client:
            client.hset(self.unacked_key, delivery_tag, dumps(entry))
        virtual.QoS.append(self, message, delivery_tag)  # the in-process bookkeeping only

    @contextmanager
    def pipe_or_acquire(self, pipe: Any = None, client: Any = None) -> Iterator[Any]:
        # An ack is one command: no MULTI/EXEC around it.
        if pipe:
            yield pipe
        else:
            with self.channel.conn_or_acquire(client) as acquired:
                yield acquired.pipeline(transaction=False)

    def _remove_from_indices(self, delivery_tag: str, pipe: Any = None) -> Any:
        with self.pipe_or_acquire(pipe) as pipe:
            return pipe.hdel(self.unacked_key, delivery_tag)

    def restore_by_tag(self, tag: str, client: Any = None, leftmost: bool = False) -> None:
        def restore_transaction(pipe: Any) -> None:
            entry = pipe.hget(self.unacked_key, tag)
            pipe.multi()
            pipe.zrem(self.unacked_index_key, tag).hdel(self.unacked_key, tag)
            if entry:
                message, exchange, routing_key = _restore_fields(entry)
                self.channel._do_restore_message(message, exchange, routing_key, pipe, leftmost)

        with self.channel.conn_or_acquire(client) as acquired:
            acquired.transaction(restore_transaction, self.unacked_key)

    def restore_visible(self, start: int = 0, num: int | None = 10, interval: int = 10) -> None:
        self._vrestore_count += 1
        if (self._vrestore_count - 1) % (interval or 1):
            return  # kombu's throttle: only every interval-th call scans
        with self.channel.conn_or_acquire() as client:
            ceil = time() - self.visibility_timeout
            try:
                with kombu_redis.Mutex(client, self.unacked_mutex_key, self.unacked_mutex_expire):
                    expired = [
                        tag
                        for tag, entry in client.hscan_iter(self.unacked_key)
                        if _expired(entry, ceil)
                    ]
                    legacy = client.zrange(self.unacked_index_key, ceil, 0, desc=True, byscore=True)
                    for tag in [*expired, *legacy][: num or None]:
                        self.restore_by_tag(tag, client)
            except kombu_redis.MutexHeld:
                pass


def _expired(entry: bytes, ceil: float) -> bool:
    fields = loads(bytes_to_str(entry))
    # Entries of stock kombu carry no time: its own index (the sorted set) covers them.
    return len(fields) > _DELIVERED_AT and float(fields[_DELIVERED_AT]) <= ceil


class Channel(kombu_redis.Channel):
    QoS = QoS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._commands: tuple[Any, Any] | None = None  # (pool, client over that pool)
        super().__init__(*args, **kwargs)

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        pool = self.pool  # replaced after a fork: the client follows it
        if self._commands is None or self._commands[0] is not pool:
            self._commands = (pool, self._create_client())
        yield self._commands[1]

    def _restore(self, message: Any, leftmost: bool = False) -> None:
        if not self.ack_emulation:
            super()._restore(message)
            return
        tag = message.delivery_tag

        def restore_transaction(pipe: Any) -> None:
            entry = pipe.hget(self.unacked_key, tag)
            pipe.multi()
            pipe.hdel(self.unacked_key, tag)
            if entry:
                payload, exchange, routing_key = _restore_fields(entry)
                self._do_restore_message(payload, exchange, routing_key, pipe, leftmost)

        with self.conn_or_acquire() as client:
            client.transaction(restore_transaction, self.unacked_key)
        return None


def backlog(client: Any, queue: str) -> int:
    """Messages of ``queue`` not yet acked: waiting in its list, or delivered to a worker that
    has not acked them (prefetched, or running). Zero means a job that waits on this queue has
    no message anywhere: it was lost."""
    waiting = int(client.llen(queue))
    in_flight = sum(
        1
        for _tag, entry in client.hscan_iter(kombu_redis.Channel.unacked_key)
        if _restore_fields(entry)[2] == queue
    )
    return waiting + in_flight


class Transport(kombu_redis.Transport):
    Channel = Channel
