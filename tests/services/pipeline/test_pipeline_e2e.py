"""End to end: real Postgres, Redis, ``tandem worker`` processes and sim engine servers.

Thresholds are set per test by activating a classifier version (the shipped ONNX file with
chosen thresholds); the workers pick the new version up without a restart, which this file
therefore also exercises.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from celery import Celery
from sqlalchemy import func, select

from shared.celery_base import producer_app, send
from shared.classifier import SIM_MODEL_PATH, register_version
from shared.db.models import JobEvent, JobStatus, ModelCall, Policy, UsageHourly
from shared.db.session import unit_of_work
from shared.tasks import Queue, TaskName
from tests.conftest import WorkerPool, start_workers, stop_workers, wait_for_workers
from tests.services.pipeline.support import (
    LocalEngines,
    assert_charged_once,
    drain,
    make_tenant,
    money_of,
    sim_engines,
    steps_of,
    submit,
    wait_terminal,
)

pytestmark = pytest.mark.e2e

SERVICES = ["coordinator", "scorer", "executor", "accounting"]
NEVER, ALWAYS = 1.01, 0.0


@pytest.fixture(scope="module")
def engines(artifacts_dir: Path, database_url: str, redis_url: str) -> Iterator[LocalEngines]:
    with sim_engines(artifacts_dir / "pipeline-e2e") as running:
        os.environ.update(running.env())  # this process computes reservations with them
        yield running


@pytest.fixture(scope="module")
def workers(engines: LocalEngines, artifacts_dir: Path) -> Iterator[WorkerPool]:
    # Webhooks go out through their own worker; the test's receiver is on loopback, which the
    # egress policy refuses unless the operator allowlists it.
    services = [*SERVICES, "webhooks"]
    env = {
        **engines.env(),
        "TANDEM_EGRESS_ALLOW_HOSTS": '["127.0.0.1"]',
        # Each test activates its own classifier: the scorers ask for it on every score.
        "TANDEM_CLASSIFIER_REFRESH_S": "0",
    }
    pool = start_workers(services, artifacts_dir / "pipeline-e2e", env)
    try:
        wait_for_workers(services)
        yield pool
    finally:
        stop_workers(pool)


@pytest.fixture(scope="module")
def app() -> Iterator[Celery]:
    celery = producer_app()
    yield celery
    celery.close()


def use_thresholds(*thresholds: float) -> str:
    version = f"test-{uuid.uuid4().hex[:8]}"
    with unit_of_work() as session:
        register_version(session, SIM_MODEL_PATH, version=version, thresholds=list(thresholds))
    return version


QUESTION = "What is 17 * 3 + 12?"


def test_job_runs_through_every_service_and_stops_at_a_middle_level(
    workers: WorkerPool, app: Celery
) -> None:
    version = use_thresholds(NEVER, ALWAYS, ALWAYS, ALWAYS)
    job = wait_terminal(submit(app, make_tenant(), QUESTION))

    assert job.status == JobStatus.SUCCEEDED.value
    assert steps_of(job.id) == ["score:0", "insights:1", "score:1", "answer"]
    assert (job.truncation_level, job.truncation_tokens) == (1, 100)
    assert job.termination_reason == "sufficient"
    assert job.classifier_version == version
    assert [s["level"] for s in job.scores] == [0, 1]
    assert [s["decision"] for s in job.scores] == ["continue", "stop"]
    assert job.answer is not None and job.reasoning and "\\boxed" in job.reasoning
    assert_charged_once(job)
    with unit_of_work() as session:
        statuses = list(
            session.scalars(
                select(JobEvent.status)
                .where(JobEvent.job_id == job.id, JobEvent.kind == "status")
                .order_by(JobEvent.id)
            )
        )
        usage = session.scalars(
            select(UsageHourly).where(UsageHourly.tenant_id == job.tenant_id)
        ).all()
    assert statuses == ["scoring", "coordinating", "scoring", "executing", "settling", "succeeded"]
    assert {u.role for u in usage} == {"scorer", "coordinator", "executor"}
    assert sum(u.calls for u in usage) == 4
    assert sum(u.cost for u in usage) == job.cost


def test_sufficient_at_level_zero_never_calls_the_coordinator(
    workers: WorkerPool, app: Celery
) -> None:
    use_thresholds(ALWAYS)
    job = wait_terminal(submit(app, make_tenant(), QUESTION))
    assert job.status == JobStatus.SUCCEEDED.value
    assert steps_of(job.id) == ["score:0", "answer"]
    assert (job.truncation_level, job.truncation_tokens, job.insight_tokens) == (0, 0, 0)
    assert job.termination_reason == "sufficient"
    assert_charged_once(job)


def test_last_level_falls_back_to_the_best_scoring_level(workers: WorkerPool, app: Celery) -> None:
    use_thresholds(NEVER)
    job = wait_terminal(submit(app, make_tenant(), QUESTION, levels=(0, 50, 100, 150)))
    assert job.status == JobStatus.SUCCEEDED.value
    assert steps_of(job.id) == [
        "score:0",
        "insights:1",
        "score:1",
        "insights:2",
        "score:2",
        "insights:3",
        "score:3",
        "answer",
    ]
    assert job.termination_reason == "max_level"
    scores = [s["score"] for s in job.scores]
    assert job.truncation_level == scores.index(max(scores))
    assert job.truncation_tokens == (0, 50, 100, 150)[job.truncation_level]
    assert_charged_once(job)


def test_insights_finished_early_stops_there(workers: WorkerPool, app: Celery) -> None:
    use_thresholds(NEVER)
    # The sim's insights are 450-750 tokens long: they end inside level 2's 5000-token budget.
    job = wait_terminal(submit(app, make_tenant(), QUESTION, levels=(0, 100, 5000, 6000)))
    assert job.status == JobStatus.SUCCEEDED.value
    assert job.insights_finished
    assert job.termination_reason == "insights_finished"
    assert "insights:3" not in steps_of(job.id)
    assert 100 < job.insight_tokens < 5000
    assert "<end_of_insights>" not in job.insights
    assert_charged_once(job)


@pytest.mark.parametrize(
    ("policy", "fixed_level", "expected_steps"),
    [
        (Policy.SLM_ONLY, None, ["answer"]),
        (Policy.LLM_ONLY, None, ["answer"]),
        (Policy.FIXED_LEVEL, 2, ["insights:1", "insights:2", "answer"]),
    ],
)
def test_baseline_policies(
    workers: WorkerPool,
    app: Celery,
    policy: Policy,
    fixed_level: int | None,
    expected_steps: list[str],
) -> None:
    job = wait_terminal(
        submit(app, make_tenant(), QUESTION, policy=policy, fixed_level=fixed_level)
    )
    assert job.status == JobStatus.SUCCEEDED.value
    assert steps_of(job.id) == expected_steps
    assert job.termination_reason == "policy"
    assert job.truncation_level == (fixed_level or 0)
    assert job.scores == []
    with unit_of_work() as session:
        role = session.scalar(
            select(ModelCall.role).where(ModelCall.job_id == job.id, ModelCall.step == "answer")
        )
    assert role == ("coordinator" if policy is Policy.LLM_ONLY else "executor")
    assert_charged_once(job)


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_webhook_is_sent_once_after_settlement(workers: WorkerPool, app: Celery) -> None:
    use_thresholds(ALWAYS)
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        job = wait_terminal(submit(app, make_tenant(), QUESTION, webhook_url=url))
        send(app, TaskName.ACCOUNTING_SETTLE, {"job_id": str(job.id)})  # a duplicate
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with unit_of_work() as session:
                kinds = list(
                    session.scalars(select(JobEvent.kind).where(JobEvent.job_id == job.id))
                )
            if "webhook_delivered" in kinds:
                break
            time.sleep(0.1)
        drain(app, [Queue.ACCOUNTING])  # the duplicate settle has been handled
        with unit_of_work() as session:
            kinds = list(session.scalars(select(JobEvent.kind).where(JobEvent.job_id == job.id)))
    finally:
        server.shutdown()
    bodies = [json.loads(body) for _, body in _Hook.received]
    mine = [b for b in bodies if str(job.id) in json.dumps(b)]
    assert len(mine) == 1
    assert kinds.count("webhook_delivered") == 1


def test_redelivered_messages_change_nothing(workers: WorkerPool, app: Celery) -> None:
    use_thresholds(NEVER, ALWAYS)
    job = wait_terminal(submit(app, make_tenant(), QUESTION))
    before = (steps_of(job.id), money_of(job.id), job.scores, job.answer)
    with unit_of_work() as session:
        events_before = session.scalar(select(func.count()).where(JobEvent.job_id == job.id))
    ids = [
        send(app, TaskName.SCORER_SCORE, {"job_id": str(job.id), "level": 0}),
        send(app, TaskName.COORDINATOR_EXTEND, {"job_id": str(job.id), "level": 1}),
        send(app, TaskName.SCORER_SCORE, {"job_id": str(job.id), "level": 1}),
        send(app, TaskName.EXECUTOR_EXECUTE, {"job_id": str(job.id)}),
        send(app, TaskName.ACCOUNTING_SETTLE, {"job_id": str(job.id)}),
    ]
    assert len(set(ids)) == len(ids)
    drain(app, [Queue(s) for s in SERVICES])  # every duplicate above has been handled
    after = wait_terminal(job.id)
    assert (steps_of(job.id), money_of(job.id), after.scores, after.answer) == before
    with unit_of_work() as session:
        assert (
            session.scalar(select(func.count()).where(JobEvent.job_id == job.id)) == events_before
        )
