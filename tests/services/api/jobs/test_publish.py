"""The API's first-task message, written with one LPUSH instead of a Celery producer, is a
Celery task message: a real Celery worker (the project's base configuration, real Redis)
consumes it and runs the task with its kwargs, trace and expiry."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from celery import Celery
from celery.contrib.testing.worker import start_worker

from services.api.jobs.publish import redis_publisher
from shared.celery_base import make_celery, producer_app, send
from shared.db.models import Job, Policy
from shared.jobs.messages import task_message
from shared.settings import WorkerSettings
from shared.tasks import Queue, TaskName
from tests.services.api.conftest import free_port

OWN_REDIS_DB = 13  # 11: the API tests, 12: worker-health tests
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture(scope="module")
def own_redis(redis_url: str) -> Iterator[str]:
    url = f"{redis_url.rsplit('/', 1)[0]}/{OWN_REDIS_DB}"
    redis.Redis.from_url(url).flushdb()
    yield url
    redis.Redis.from_url(url).flushdb()


@pytest.fixture(scope="module")
def worker(own_redis: str) -> Iterator[tuple[list[dict[str, Any]], threading.Event]]:
    """A real Celery worker on the executor queue whose ``executor.execute`` records what it
    was asked to run (one for the module: a second worker app in one process would register
    the same task name again)."""
    app: Celery = make_celery(
        "publish-test", queue=Queue.EXECUTOR, settings=WorkerSettings(redis_url=own_redis)
    )
    ran: list[dict[str, Any]] = []
    done = threading.Event()

    @app.task(name=TaskName.EXECUTOR_EXECUTE.value, bind=True)
    def execute(self: Any, job_id: str) -> None:
        request = self.request
        ran.append(
            {
                "job_id": job_id,
                "id": request.id,
                "traceparent": getattr(request, "traceparent", None),
                "expires": request.expires,
            }
        )
        done.set()

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        yield ran, done


@pytest.fixture
def executor_worker(
    worker: tuple[list[dict[str, Any]], threading.Event],
) -> tuple[list[dict[str, Any]], threading.Event]:
    ran, done = worker
    ran.clear()
    done.clear()
    return worker


async def test_a_real_worker_consumes_the_message(
    own_redis: str, executor_worker: tuple[list[dict[str, Any]], threading.Event]
) -> None:
    ran, done = executor_worker
    job = Job(id=uuid.uuid4(), policy=Policy.SLM_ONLY.value, fixed_level=None)
    async with aioredis.Redis.from_url(own_redis) as client:
        await redis_publisher(client, expires_s=600)(job, TRACEPARENT)
    assert done.wait(30), "the worker never ran the published task"
    (run,) = ran
    assert run["job_id"] == str(job.id)
    assert run["traceparent"] == TRACEPARENT
    assert datetime.fromisoformat(run["expires"]) > datetime.now().astimezone()


def test_the_message_has_the_shape_celery_itself_sends(own_redis: str) -> None:
    """Celery's own producer and ours, for the same task: the same headers and properties
    (values that differ per message aside), the same body."""
    settings = WorkerSettings(redis_url=own_redis)
    app = producer_app(settings)
    kwargs = {"job_id": str(uuid.uuid4()), "level": 0}
    try:
        send(app, TaskName.SCORER_SCORE, kwargs, settings=settings)
    finally:
        app.close()
    theirs = json.loads(redis.Redis.from_url(own_redis).rpop(Queue.SCORER.value) or b"{}")
    ours = json.loads(
        task_message(
            TaskName.SCORER_SCORE,
            kwargs,
            expires_s=settings.task_expires_s,
            traceparent=TRACEPARENT,
            origin="gen1@host",
        )
    )
    assert ours["body"] == theirs["body"]
    assert {k: v for k, v in ours.items() if k not in ("headers", "properties")} == {
        k: v for k, v in theirs.items() if k not in ("headers", "properties")
    }
    per_message = {"id", "root_id", "expires", "origin", "traceparent"}
    assert set(ours["headers"]) >= set(theirs["headers"]) - {"traceparent"}
    for name, value in theirs["headers"].items():
        if name not in per_message:
            assert ours["headers"][name] == value, name
    for name in ("delivery_mode", "expiration", "delivery_info", "priority", "body_encoding"):
        assert ours["properties"][name] == theirs["properties"][name], name


async def test_concurrent_publishes_share_one_lpush_and_each_is_consumed(
    own_redis: str, executor_worker: tuple[list[dict[str, Any]], threading.Event]
) -> None:
    ran, _ = executor_worker
    jobs = [Job(id=uuid.uuid4(), policy=Policy.SLM_ONLY.value, fixed_level=None) for _ in range(5)]
    watcher = redis.Redis.from_url(own_redis)
    before = watcher.info("commandstats").get("cmdstat_lpush", {}).get("calls", 0)
    async with aioredis.Redis.from_url(own_redis) as client:
        publish = redis_publisher(client, expires_s=600)
        await asyncio.gather(*(publish(job, TRACEPARENT) for job in jobs))
    assert watcher.info("commandstats")["cmdstat_lpush"]["calls"] == before + 1
    deadline = time.monotonic() + 30
    while len(ran) < len(jobs):
        assert time.monotonic() < deadline, f"the worker ran {len(ran)} of {len(jobs)} tasks"
        await asyncio.sleep(0.05)
    # Consumed in the order they were published.
    assert [run["job_id"] for run in ran] == [str(job.id) for job in jobs]


async def test_a_failed_lpush_fails_every_publish_it_carried(own_redis: str) -> None:
    jobs = [Job(id=uuid.uuid4(), policy=Policy.SLM_ONLY.value, fixed_level=None) for _ in range(3)]
    async with aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0") as client:
        publish = redis_publisher(client, expires_s=600)
        outcomes = await asyncio.gather(
            *(publish(job, TRACEPARENT) for job in jobs), return_exceptions=True
        )
    assert all(isinstance(o, redis.RedisError) for o in outcomes), outcomes
