"""A pipeline task's message as the broker holds it, and its publication with one ``LPUSH``.

The message is the one Celery itself sends (protocol 2: same headers, properties, base64 JSON
body; what kombu's Redis transport pushes for priority 0), so every worker consumes it
unchanged; a test has a real worker consume one. It is built here rather than through a
Celery producer because kombu's publish machinery (producer pool, exchange declaration,
serializer registry) costs several times the ``LPUSH`` itself: ``benchmarks/step_bench.py``,
"publish next task". The API publishes a job's first task and the workers each next one this
way. The W3C ``traceparent`` header carries the job's trace to the next worker, as Celery's
instrumentation would have.

Nobody reads a pipeline task's result: no ``reply_to``, ``ignore_result`` set.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import redis
from opentelemetry.propagate import inject

from shared.tasks import TaskName

# What Celery puts after args and kwargs: no callbacks, no canvas.
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
# A publish that met an unreachable broker.
BROKER_DOWN = (redis.ConnectionError, redis.TimeoutError)
BROKER_TIMEOUT_S = 5.0


def task_message(
    name: TaskName,
    kwargs: Mapping[str, Any],
    *,
    expires_s: float,
    traceparent: str,
    origin: str,
    task_id: str | None = None,
) -> bytes:
    """The Redis list entry of a Celery protocol-2 message for ``name``, as kombu writes it."""
    task_id = task_id or str(uuid.uuid4())
    expires = datetime.now(UTC) + timedelta(seconds=expires_s)
    body = json.dumps([[], dict(kwargs), _EMBED]).encode()
    message = {
        "body": base64.b64encode(body).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py",
            "task": name.value,
            "id": task_id,
            "shadow": None,
            "eta": None,
            "expires": expires.isoformat(),
            "group": None,
            "group_index": None,
            "retries": 0,
            "timelimit": [None, None],
            "root_id": task_id,
            "parent_id": None,
            "argsrepr": "()",
            "kwargsrepr": repr(dict(kwargs)),
            "origin": origin,
            "ignore_result": not name.replies,
            "replaced_task_nesting": 0,
            "stamped_headers": None,
            "stamps": {},
            "traceparent": traceparent,
        },
        "properties": {
            "correlation_id": task_id,
            "delivery_mode": 2,
            "expiration": str(int(expires_s * 1000)),
            "delivery_info": {"exchange": "", "routing_key": name.queue.value},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }
    return json.dumps(message).encode()


def origin() -> str:
    """Who sent a message, as Celery names it (``gen<pid>@<host>``)."""
    return f"gen{os.getpid()}@{socket.gethostname()}"


def current_traceparent() -> str:
    """The W3C traceparent of the span in progress ('' when nothing is traced)."""
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier.get("traceparent", "")


@lru_cache(maxsize=4)
def broker_client(url: str) -> redis.Redis[bytes]:
    """This process's client of the broker at ``url`` (redis-py reopens its pool after a
    fork); an unreachable broker fails a publish within seconds, not after kombu's retries."""
    return redis.Redis.from_url(
        url, socket_timeout=BROKER_TIMEOUT_S, socket_connect_timeout=BROKER_TIMEOUT_S
    )


def push(
    url: str, tasks: Sequence[tuple[TaskName, Mapping[str, Any]]], *, expires_s: float
) -> list[str]:
    """Each task's message onto its queue's list: one ``LPUSH`` per queue, in one round trip.
    Returns the task ids; raises one of :data:`BROKER_DOWN` when the broker is unreachable."""
    ids = [str(uuid.uuid4()) for _ in tasks]
    sender, traceparent = origin(), current_traceparent()
    queues: dict[str, list[bytes]] = {}
    for task_id, (name, kwargs) in zip(ids, tasks, strict=True):
        message = task_message(
            name,
            kwargs,
            expires_s=expires_s,
            traceparent=traceparent,
            origin=sender,
            task_id=task_id,
        )
        queues.setdefault(name.queue.value, []).append(message)
    with broker_client(url).pipeline(transaction=False) as pipe:
        for queue, messages in queues.items():
            pipe.lpush(queue, *messages)
        if queues:
            pipe.execute()
    return ids
