"""Publishing an admitted job's first task, strictly after its row is committed.

Which task starts a job is the pipeline's decision (:func:`shared.jobs.first_task`); the API
only writes that task's message. It does so with an ``LPUSH`` of a Celery protocol-2 message
built here, on the event loop, instead of through a Celery producer: kombu's publish machinery
(producer pool, exchange declaration, serializer registry, a worker-thread hop) cost more CPU
than the rest of an admission. The message is the one Celery itself sends (same headers,
properties, base64 JSON body; what the kombu Redis transport pushes for priority 0), so every
worker consumes it unchanged; a test has a real worker consume one. The W3C ``traceparent``
header carries the job's trace to the workers, as Celery's instrumentation would have.

The API never reads a task's result (no ``reply_to``, ``ignore_result`` set), and it does not
retry a publish: with the broker down the caller gets a 503 within the Redis timeout.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import redis.asyncio as aioredis
from celery import Celery

from services.api.settings import ApiSettings
from shared.celery_base import producer_app
from shared.db.models import Job
from shared.jobs import first_task
from shared.tasks import TaskName

# What Celery puts after args and kwargs: no callbacks, no canvas.
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


class Publisher(Protocol):
    async def __call__(self, job: Job, traceparent: str) -> None: ...


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


def redis_publisher(client: aioredis.Redis[bytes], expires_s: float) -> Publisher:
    """Publish a job's first task onto its queue's list (priority 0).

    Submissions that reach this point in the same turn of the event loop share one ``LPUSH``
    (a command takes many values): the first waits one turn for the others, and each returns
    once the command carrying its message has succeeded, or raises what it raised.
    """
    origin = f"gen{os.getpid()}@{socket.gethostname()}"
    gathering: dict[str, list[tuple[bytes, asyncio.Future[None]]]] = {}

    async def push(queue: str, message: bytes) -> None:
        riders = gathering.get(queue)
        if riders is not None:
            carried = asyncio.get_running_loop().create_future()
            riders.append((message, carried))
            await carried
            return
        riders = gathering[queue] = []
        try:
            try:
                await asyncio.sleep(0)
            finally:
                del gathering[queue]
            await client.lpush(queue, message, *(m for m, _ in riders))
        except BaseException as exc:
            failure = exc if isinstance(exc, Exception) else ConnectionError("publish cancelled")
            for _, carried in riders:
                if not carried.done():
                    carried.set_exception(failure)
            raise
        for _, carried in riders:
            if not carried.done():
                carried.set_result(None)

    async def publish(job: Job, traceparent: str) -> None:
        task = first_task(job)
        message = task_message(
            task.name, task.kwargs, expires_s=expires_s, traceparent=traceparent, origin=origin
        )
        await push(task.name.queue.value, message)

    return publish


def api_producer(settings: ApiSettings) -> Celery:
    """The API's Celery app, for what needs Celery's own client (the readiness probe's inspect
    of queue consumers): no result backend, and no connection retries, so a broker that is
    down answers within about a second."""
    app = producer_app(settings)
    timeout = settings.dependency_timeout_s
    app.conf.update(
        result_backend=None,
        task_publish_retry=False,
        broker_connection_timeout=timeout,
        broker_connection_retry=False,
        broker_transport_options={
            **app.conf.broker_transport_options,
            "socket_connect_timeout": timeout,
            "socket_timeout": max(timeout, 5.0),
        },
    )
    return app
