"""Helpers of the pipeline's end-to-end tests and benchmark: sim engines, tenants, jobs.

Jobs are admitted the way the API admits them (worst-case reservation with
:func:`shared.budgets.reserve` in the same transaction as the job row), then started with
:func:`shared.jobs.start_job` after the commit.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from celery import Celery
from sqlalchemy import func, select

from shared.budgets import record_reserve, reserve
from shared.celery_base import send
from shared.costs import Plan, Profiles, worst_case_cost
from shared.db.models import Domain, Job, LedgerEntry, ModelCall, Policy, Role
from shared.db.session import unit_of_work
from shared.engines.config import engine_config
from shared.jobs import start_job
from shared.prompts import PROMPT_VERSION, template_overhead_tokens
from shared.tasks import HEALTH_TASKS, Queue
from shared.tenants.service import create_tenant

LEVELS = (0, 100, 500, 1000)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalEngines:
    coordinator_url: str
    executor_url: str
    coordinator_model: str
    executor_model: str

    def env(self) -> dict[str, str]:
        """What workers need to reach these engines."""
        return {
            "TANDEM_COORDINATOR_ENGINE_URL": self.coordinator_url,
            "TANDEM_COORDINATOR_ENGINE_MODEL_ID": self.coordinator_model,
            "TANDEM_EXECUTOR_ENGINE_URL": self.executor_url,
            "TANDEM_EXECUTOR_ENGINE_MODEL_ID": self.executor_model,
        }


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"engine at {url} exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"engine at {url} not healthy")


@contextmanager
def local_engines(
    logs: Path,
    *,
    backend: str = "sim",
    coordinator: str = "sim-coordinator",
    executor: str = "sim-executor",
    start_timeout_s: float = 60.0,
    sim: dict[str, str] | None = None,
    model_ids: tuple[str, str] | None = None,
) -> Iterator[LocalEngines]:
    """Two real ``tandem engine serve`` servers; ``sim`` sets TANDEM_ENGINE_SIM_* knobs;
    ``model_ids`` are the ids they report (and workers are told) instead of the models."""
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TANDEM_ENGINE_SIM_TOKENS_PER_S": "0"}
    env.update({f"TANDEM_ENGINE_SIM_{k.upper()}": v for k, v in (sim or {}).items()})
    urls, processes = [], []
    try:
        ids = model_ids or (coordinator, executor)
        for model, model_id in zip((coordinator, executor), ids, strict=True):
            port = free_port()
            log = (logs / f"engine-{model_id}.log").open("wb")
            command = [sys.executable, "-m", "tandem", "engine", "serve", "--backend", backend]
            command += ["--model", model, "--model-id", model_id]
            command += ["--host", "127.0.0.1", "--port", str(port)]
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
            processes.append(process)
            urls.append(f"http://127.0.0.1:{port}")
        for url, process in zip(urls, processes, strict=True):
            _wait_healthy(url, process, start_timeout_s)
        yield LocalEngines(urls[0], urls[1], *ids)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


@contextmanager
def sim_engines(logs: Path, **sim: str) -> Iterator[LocalEngines]:
    """The simulator pair at zero latency unless ``sim`` says otherwise."""
    with local_engines(logs, sim=sim) as engines:
        yield engines


@pytest.fixture(scope="module")
def sim_env(database_url: str, artifacts_dir: Path) -> Iterator[LocalEngines]:
    """The simulator pair, with this process's engine variables pointing at it (a module's
    steps run in-process against them); the variables are restored afterwards."""
    with sim_engines(artifacts_dir / "steps-sim") as engines, pytest.MonkeyPatch.context() as env:
        for name, value in engines.env().items():
            env.setenv(name, value)
        yield engines


def use_classifier(*thresholds: float, model: Path | None = None) -> str:
    """Activate the simulator's classifier (or ``model``) with ``thresholds`` (1.01: never
    sufficient, 0.0: always); returns its version."""
    from services.scorer.service import runtime
    from shared.classifier import SIM_MODEL_PATH, register_version

    version = f"test-{uuid.uuid4().hex[:8]}"
    with unit_of_work() as session:
        register_version(
            session, model or SIM_MODEL_PATH, version=version, thresholds=list(thresholds)
        )
    runtime().forget_active()  # this process's scorer sees the new version at once
    return version


def sim_profiles() -> Profiles:
    return Profiles(
        coordinator=engine_config(Role.COORDINATOR).profile,
        executor=engine_config(Role.EXECUTOR).profile,
    )


def make_tenant(cap: Decimal = Decimal("1000")) -> uuid.UUID:
    with unit_of_work() as session:
        tenant = create_tenant(session, f"pipeline-{uuid.uuid4().hex[:10]}", budget_cap=cap)
        return tenant.id


def submit(
    app: Celery | None,
    tenant_id: uuid.UUID,
    question: str,
    *,
    policy: Policy = Policy.TANDEM,
    levels: tuple[int, ...] = LEVELS,
    fixed_level: int | None = None,
    max_answer_tokens: int = 128,
    domain: Domain = Domain.MATH,
    start: bool = True,
    webhook_url: str | None = None,
) -> uuid.UUID:
    """Admit a job with its worst-case reservation, commit, then publish its first task."""
    from shared.db.models import Tenant

    plan = Plan(policy, levels, max_answer_tokens, fixed_level)
    amount = worst_case_cost(plan, sim_profiles(), question, template_overhead_tokens(domain))
    with unit_of_work() as session:
        tenant = session.get(Tenant, tenant_id)
        assert tenant is not None
        reservation = reserve(session, tenant, amount)
        job = Job(
            id=uuid.uuid4(),
            tenant_id=tenant.id,
            domain=domain.value,
            policy=policy.value,
            question=question,
            levels=list(levels),
            fixed_level=fixed_level,
            max_answer_tokens=max_answer_tokens,
            prompt_version=PROMPT_VERSION,
            budget_id=reservation.budget_id,
            reserved_amount=reservation.amount,
            webhook_url=webhook_url,
        )
        session.add(job)
        session.flush()
        record_reserve(session, tenant.id, job.id, reservation)
    if start:
        assert app is not None, "a job is started through a Celery app"
        start_job(app, job)
    return job.id


def drain(app: Celery, queues: list[Queue], timeout_s: float = 30.0) -> None:
    """Wait until every message sent to ``queues`` so far has been handled: a health probe
    sent behind them is answered only then (one worker process per queue takes one message
    at a time, in order)."""
    probes = [send(app, HEALTH_TASKS[queue], {}) for queue in queues]
    for probe in probes:
        app.AsyncResult(probe).get(timeout=timeout_s)


def job_row(job_id: uuid.UUID) -> Job:
    """The job as committed, detached."""
    with unit_of_work() as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def history(job_id: uuid.UUID) -> list[tuple[str, str | None, int | None]]:
    """The job's events in order: (kind, status, level)."""
    from sqlalchemy import select

    from shared.db.models import JobEvent

    with unit_of_work() as session:
        rows = session.execute(
            select(JobEvent.kind, JobEvent.status, JobEvent.level)
            .where(JobEvent.job_id == job_id)
            .order_by(JobEvent.id)
        ).all()
    return [(kind, status, level) for kind, status, level in rows]


def event_data(job_id: uuid.UUID, kind: str) -> list[dict[str, Any]]:
    """What the job's events of ``kind`` recorded, in order."""
    from sqlalchemy import select

    from shared.db.models import JobEvent

    with unit_of_work() as session:
        return list(
            session.scalars(
                select(JobEvent.data)
                .where(JobEvent.job_id == job_id, JobEvent.kind == kind)
                .order_by(JobEvent.id)
            )
        )


def calls_of(job_id: uuid.UUID) -> list[tuple[str, str]]:
    """The job's recorded model calls in order: (step, role)."""
    from sqlalchemy import select

    from shared.db.models import ModelCall

    with unit_of_work() as session:
        rows = session.execute(
            select(ModelCall.step, ModelCall.role)
            .where(ModelCall.job_id == job_id)
            .order_by(ModelCall.created_at)
        ).all()
    return [(step, role) for step, role in rows]


def wait_terminal(job_id: uuid.UUID, timeout_s: float = 60.0) -> Job:
    deadline = time.monotonic() + timeout_s
    while True:
        with unit_of_work() as session:
            job = session.get(Job, job_id)
            assert job is not None
            if job.status in ("succeeded", "failed", "cancelled", "rejected"):
                session.expunge(job)
                return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {job.status}")
        time.sleep(0.1)


def steps_of(job_id: uuid.UUID) -> list[str]:
    with unit_of_work() as session:
        return list(
            session.scalars(
                select(ModelCall.step)
                .where(ModelCall.job_id == job_id)
                .order_by(ModelCall.created_at)
            )
        )


def money_of(job_id: uuid.UUID) -> dict[str, Decimal]:
    with unit_of_work() as session:
        rows = session.execute(
            select(LedgerEntry.kind, LedgerEntry.amount).where(LedgerEntry.job_id == job_id)
        ).all()
        calls = session.scalar(select(func.sum(ModelCall.cost)).where(ModelCall.job_id == job_id))
    money = {kind: amount for kind, amount in rows}
    money["calls"] = Decimal(calls or 0)
    return money


def assert_charged_once(job: Job) -> None:
    money = money_of(job.id)
    assert set(money) == {"reserve", "settle", "release", "calls"}
    assert money["settle"] == money["calls"] == job.cost > 0
    assert money["settle"] + money["release"] == money["reserve"] == job.reserved_amount
