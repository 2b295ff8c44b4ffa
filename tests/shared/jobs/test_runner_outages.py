"""A step meeting a Postgres or Redis outage loses no job (real Postgres; a dead broker)."""

from __future__ import annotations

import ast
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
import pytest
import redis
from celery import Celery
from prometheus_client import REGISTRY
from sqlalchemy.exc import OperationalError

from shared.celery_base import TandemTask, make_celery
from shared.jobs.flow import NextTask
from shared.jobs.runner import run_step
from shared.logging import current_context
from shared.settings import WorkerSettings
from shared.tasks import Queue, TaskName
from tests.services.pipeline.support import (
    event_data,
    free_port,
    history,
    job_row,
    make_tenant,
    submit,
)


@dataclass
class Request:
    retries: int


@dataclass
class Task:
    """What run_step reads from a bound Celery task: its name, retry count and limit."""

    name: str
    max_retries: int
    request: Request = field(default_factory=lambda: Request(0))


def dropped_connection() -> OperationalError:
    cause = psycopg.OperationalError("server closed the connection unexpectedly")
    return OperationalError("SELECT 1", {}, cause)


@pytest.fixture
def dead_broker(database_url: str) -> Iterator[Celery]:
    settings = WorkerSettings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    app = make_celery("dead-broker", settings=settings)
    app.conf.broker_connection_max_retries = 0
    app.conf.broker_transport_options = {"max_retries": 0}
    yield app
    app.close()


def test_a_database_outage_is_retried_and_no_failure_is_written_into_it(
    dead_broker: Celery,
) -> None:
    job_id = submit(None, make_tenant(), "What is 1 + 1?", start=False)
    task = Task(TaskName.SCORER_SCORE.value, max_retries=2)

    def step() -> list[NextTask]:
        raise dropped_connection()

    with pytest.raises(OperationalError):  # retries left: re-raised for the backoff retry
        run_step(task, dead_broker, str(job_id), step)
    task.request.retries = 2  # the last allowed attempt
    assert run_step(task, dead_broker, str(job_id), step)["next"] == []
    job = job_row(job_id)
    assert (job.status, job.error_code) == ("queued", None)  # left for the sweeper
    assert OperationalError in TandemTask.autoretry_for


def test_a_committed_step_whose_successor_cannot_be_published_returns_normally(
    dead_broker: Celery,
) -> None:
    job_id = submit(None, make_tenant(), "What is 1 + 1?", start=False)
    following = [NextTask(TaskName.SCORER_SCORE, {"job_id": str(job_id), "level": 0})]
    task = Task(TaskName.SCORER_SCORE.value, max_retries=2)
    result = run_step(task, dead_broker, str(job_id), lambda: following)
    assert result["next"] == [TaskName.SCORER_SCORE.value]  # lost for now: the sweeper resends


def test_a_transient_failure_marks_the_job_as_retrying(dead_broker: Celery) -> None:
    from shared.engines.errors import TransientEngineError

    job_id = submit(None, make_tenant(), "What is 1 + 1?", start=False)
    task = Task(TaskName.SCORER_SCORE.value, max_retries=2)

    def step() -> list[NextTask]:
        raise TransientEngineError("connection failed", engine="sim", route="POST /generate")

    with pytest.raises(TransientEngineError):
        run_step(task, dead_broker, str(job_id), step)
    assert history(job_id)[-1] == ("retry", "queued", None)


@dataclass
class Expired:
    """What Celery's ``task_revoked`` signal carries of a message it dropped for its age."""

    kwargs: dict[str, object]
    expires: str = "2026-01-01T00:00:00+00:00"


@dataclass(frozen=True)
class Sender:
    app: Celery
    name: str


def messages_for(redis_url: str, queue: Queue, job_id: uuid.UUID) -> list[dict[str, object]]:
    """The kwargs of the messages waiting on ``queue`` for ``job_id``."""
    waiting = redis.Redis.from_url(redis_url).lrange(queue.value, 0, -1)
    headers = [json.loads(raw)["headers"] for raw in waiting]
    kwargs = [ast.literal_eval(h["kwargsrepr"]) for h in headers]
    return [k for k in kwargs if k.get("job_id") == str(job_id)]


def expired_count(task: str, awaited: str) -> float:
    labels = {"task": task, "awaited": awaited}
    return REGISTRY.get_sample_value("tandem_messages_expired_total", labels) or 0.0


@pytest.fixture
def worker_app(redis_url: str) -> Iterator[Celery]:
    app = make_celery(
        "expiry-worker",
        queue=TaskName.SCORER_SCORE.queue,
        settings=WorkerSettings(redis_url=redis_url),
    )
    yield app
    app.close()


def test_an_expired_message_the_job_waits_for_is_sent_again_at_once(
    worker_app: Celery, redis_url: str
) -> None:
    from shared.jobs.runner import note_expired
    from shared.jobs.service import fail_job

    live = submit(None, make_tenant(), "What is 2 + 2?", start=False)  # waits for score:0
    over = submit(None, make_tenant(), "What is 3 + 3?", start=False)
    fail_job(over, "engine_error", "x")
    task = TaskName.SCORER_SCORE.value
    before = {awaited: expired_count(task, awaited) for awaited in ("true", "false", "unknown")}
    context = current_context()
    note_expired(worker_app, task, Expired({"job_id": str(over), "level": 0}))  # job over
    note_expired(worker_app, task, Expired({"job_id": str(live), "level": 0}))
    note_expired(worker_app, task, Expired({}))  # a health probe: no job
    note_expired(worker_app, task, Expired({"job_id": "not-a-uuid"}))  # logged, not raised
    assert current_context() == context  # the consumer's next lines name none of these jobs
    assert history(live)[-1] == ("expired", "queued", None)
    assert event_data(live, "expired")[-1]["awaited"] is True
    assert messages_for(redis_url, Queue.SCORER, live) == [{"job_id": str(live), "level": 0}]
    assert "expired" not in [kind for kind, _, _ in history(over)]
    assert messages_for(redis_url, Queue.SCORER, over) == []
    counted = {k: expired_count(task, k) - v for k, v in before.items()}
    assert counted == {"true": 1, "false": 1, "unknown": 1}  # the probe is no job's message


def test_an_expired_stale_duplicate_is_recorded_and_not_sent_again(
    worker_app: Celery, redis_url: str
) -> None:
    from shared.jobs.runner import note_expired

    job_id = submit(None, make_tenant(), "What is 5 + 5?", start=False)  # waits for score:0
    note_expired(
        worker_app, TaskName.SCORER_SCORE.value, Expired({"job_id": str(job_id), "level": 1})
    )
    extend = TaskName.COORDINATOR_EXTEND.value
    note_expired(worker_app, extend, Expired({"job_id": str(job_id), "level": 1}))
    assert [d["awaited"] for d in event_data(job_id, "expired")] == [False, False]
    assert messages_for(redis_url, Queue.SCORER, job_id) == []
    assert messages_for(redis_url, Queue.COORDINATOR, job_id) == []


def test_a_worker_handles_the_expiry_of_a_message_it_drops(
    worker_app: Celery, redis_url: str
) -> None:
    """The signal is wired in every service's app: Celery's own handling of an expired
    request sends it."""
    from celery import signals

    job_id = submit(None, make_tenant(), "What is 4 + 4?", start=False)
    task = Sender(worker_app, TaskName.SCORER_SCORE.value)  # what Celery sends it from
    signals.task_revoked.send(
        sender=task, request=Expired({"job_id": str(job_id), "level": 0}), expired=True
    )
    assert history(job_id)[-1] == ("expired", "queued", None)
    assert messages_for(redis_url, Queue.SCORER, job_id) == [{"job_id": str(job_id), "level": 0}]
