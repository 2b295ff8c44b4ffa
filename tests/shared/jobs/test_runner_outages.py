"""A step meeting a Postgres or Redis outage loses no job (real Postgres; a dead broker)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
import pytest
from celery import Celery
from sqlalchemy.exc import OperationalError

from shared.celery_base import TandemTask, make_celery
from shared.jobs.flow import NextTask
from shared.jobs.runner import run_step
from shared.settings import WorkerSettings
from shared.tasks import TaskName
from tests.services.pipeline.support import free_port, history, job_row, make_tenant, submit


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


def test_an_expired_message_is_an_event_of_its_live_job_only() -> None:
    from shared.jobs.runner import note_expired
    from shared.jobs.service import fail_job

    live = submit(None, make_tenant(), "What is 2 + 2?", start=False)
    over = submit(None, make_tenant(), "What is 3 + 3?", start=False)
    fail_job(over, "engine_error", "x")
    task = TaskName.SCORER_SCORE.value
    note_expired(task, Expired({"job_id": str(live), "level": 0}))
    note_expired(task, Expired({"job_id": str(over), "level": 0}))  # a late duplicate
    note_expired(task, Expired({}))  # a health probe: no job
    note_expired(task, Expired({"job_id": "not-a-uuid"}))  # logged, not raised
    assert history(live)[-1] == ("expired", "queued", None)
    assert "expired" not in [kind for kind, _, _ in history(over)]


def test_a_worker_records_the_expiry_of_a_message_it_drops() -> None:
    """The signal is wired in every service's app: Celery's own handling of an expired
    request sends it."""
    from celery import signals

    job_id = submit(None, make_tenant(), "What is 4 + 4?", start=False)
    worker_app = make_celery("expiry-worker", queue=TaskName.SCORER_SCORE.queue)
    task = Sender(worker_app, TaskName.SCORER_SCORE.value)  # what Celery sends it from
    signals.task_revoked.send(
        sender=task, request=Expired({"job_id": str(job_id), "level": 0}), expired=True
    )
    assert history(job_id)[-1] == ("expired", "queued", None)
    worker_app.close()
