"""Publishing an admitted job's first task, strictly after its row is committed.

Which task starts a job is the pipeline's decision (:func:`shared.jobs.first_task`); the API
only writes that task's message, :func:`shared.jobs.messages.task_message`, with an ``LPUSH``
on the event loop: through a Celery producer (producer pool, exchange declaration, serializer
registry, a worker-thread hop) it cost more CPU than the rest of an admission. The W3C
``traceparent`` header carries the job's trace to the workers.

The API never reads a task's result (no ``reply_to``, ``ignore_result`` set), and it does not
retry a publish: with the broker down the caller gets a 503 within the Redis timeout.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import redis.asyncio as aioredis
from celery import Celery

from services.api.settings import ApiSettings
from shared.celery_base import producer_app
from shared.db.models import Job
from shared.jobs import first_task
from shared.jobs.messages import origin, task_message


class Publisher(Protocol):
    async def __call__(self, job: Job, traceparent: str) -> None: ...


def redis_publisher(client: aioredis.Redis[bytes], expires_s: float) -> Publisher:
    """Publish a job's first task onto its queue's list (priority 0).

    Submissions that reach this point in the same turn of the event loop share one ``LPUSH``
    (a command takes many values): the first waits one turn for the others, and each returns
    once the command carrying its message has succeeded, or raises what it raised.
    """
    sender = origin()
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
            task.name, task.kwargs, expires_s=expires_s, traceparent=traceparent, origin=sender
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
