"""Jobs through the whole pipeline (four real ``tandem worker`` services over Redis) against
the same steps run in-process with no queue, with the simulator engine at zero and at a
realistic latency.

For each latency it reports, for the queued system: jobs per second with all jobs submitted at
once, and per-job orchestration overhead (end-to-end time minus the engine time its model
calls recorded; one job at a time) at p50/p95/p99; the same for the in-process driver; and the
ratio queued / in-process, which is the figure. Real Postgres and Redis (the local stack's
servers, scratch database ``tandem_pipeline_bench``, Redis db 13). Asserts nothing.

    python benchmarks/pipeline_bench.py [--jobs 20] [--latency-tokens-per-s 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tandem.stack.binaries import find_binaries  # noqa: E402
from tandem.stack.infra import (  # noqa: E402
    InfraConfig,
    ensure_database,
    start_postgres,
    start_redis,
)
from tandem.stack.settings import StackSettings  # noqa: E402

INFRA = InfraConfig.from_settings(StackSettings(), base=ROOT)
DATABASE_URL = INFRA.database_url("tandem_pipeline_bench")
REDIS_URL = INFRA.redis_url(13)
os.environ.update(
    {
        "TANDEM_ENVIRONMENT": "test",
        "TANDEM_DATABASE_URL": DATABASE_URL,
        "TANDEM_REDIS_URL": REDIS_URL,
        "TANDEM_LOG_JSON": "false",
        "TANDEM_LOG_LEVEL": "WARNING",
    }
)
LEVELS = (0, 40, 80, 120)
SERVICES = ("coordinator", "scorer", "executor", "accounting")
QUESTIONS = [f"What is {a} * {a + 4} + {2 * a + 4}?" for a in range(3, 60)]


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    cut = (
        statistics.quantiles(ordered, n=100, method="inclusive")
        if len(ordered) > 1
        else ordered * 99
    )
    return (
        f"p50 {cut[49] * 1000:8.1f} ms  p95 {cut[94] * 1000:8.1f} ms  p99 {cut[98] * 1000:8.1f} ms"
    )


def wait_for_workers(app: Any, timeout_s: float = 120.0) -> None:
    """Each service's health task round-trips its queue."""
    from shared.tasks import HEALTH_TASKS, Queue

    deadline = time.monotonic() + timeout_s
    for service in SERVICES:
        queue = Queue(service)
        while True:
            result = app.send_task(HEALTH_TASKS[queue].value, queue=queue.value, expires=10)
            try:
                result.get(timeout=5)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise


def engine_seconds(job_id: uuid.UUID) -> float:
    from sqlalchemy import func, select

    from shared.db.models import ModelCall
    from shared.db.session import unit_of_work

    with unit_of_work() as session:
        total = session.scalar(
            select(func.coalesce(func.sum(ModelCall.latency_ms), 0)).where(
                ModelCall.job_id == job_id
            )
        )
    return float(total or 0) / 1000.0


def inline_driver() -> Callable[[uuid.UUID], None]:
    """Run a job's steps as plain calls, following the same next-task decisions, no queue."""
    from services.accounting import service as accounting
    from services.coordinator import service as coordinator
    from services.executor import service as executor
    from services.scorer import service as scorer
    from shared.db.models import Job
    from shared.db.session import unit_of_work
    from shared.jobs import first_task
    from shared.jobs.flow import NextTask
    from shared.tasks import TaskName

    handlers: dict[TaskName, Callable[[Mapping[str, Any]], list[NextTask]]] = {
        TaskName.SCORER_SCORE: lambda kw: scorer.score(kw["job_id"], kw["level"]),
        TaskName.COORDINATOR_EXTEND: lambda kw: coordinator.extend(kw["job_id"], kw["level"]),
        TaskName.EXECUTOR_EXECUTE: lambda kw: executor.execute(kw["job_id"]),
        TaskName.ACCOUNTING_SETTLE: lambda kw: accounting.settle_job(kw["job_id"]),
    }

    def run(job_id: uuid.UUID) -> None:
        with unit_of_work() as session:
            job = session.get(Job, job_id)
            assert job is not None
            pending = [first_task(job)]
        while pending:
            task = pending.pop(0)
            pending.extend(handlers[task.name](task.kwargs))

    return run


def measure(label: str, jobs: int, tokens_per_s: float, logs: Path) -> dict[str, float]:
    from celery import Celery

    from shared.celery_base import producer_app
    from tests.services.pipeline.support import make_tenant, sim_engines, submit, wait_terminal

    sim = {"tokens_per_s": str(tokens_per_s)} if tokens_per_s else {}
    with sim_engines(logs / label, **sim) as engines:
        os.environ.update(engines.env())
        from shared.classifier import DEFAULT_MODEL_PATH, register_version
        from shared.db.session import unit_of_work

        with unit_of_work() as session:  # continue once at level 0, then stop: 2 levels scored
            register_version(
                session,
                DEFAULT_MODEL_PATH,
                version=f"bench-{uuid.uuid4().hex[:8]}",
                thresholds=[1.01, 0.0],
            )
        tenant = make_tenant()
        app: Celery = producer_app()
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "tandem", "worker", s, "--concurrency", "2"],
                stdout=(logs / f"{label}-worker-{s}.log").open("wb"),
                stderr=subprocess.STDOUT,
                env={**os.environ, **engines.env()},
                start_new_session=True,
            )
            for s in SERVICES
        ]
        try:
            wait_for_workers(app)
            questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(jobs)]
            # Queued, one at a time: per-job orchestration overhead.
            queued_overhead = []
            for question in questions:
                start = time.perf_counter()
                job_id = submit(app, tenant, question, levels=LEVELS, max_answer_tokens=64)
                wait_terminal(job_id, timeout_s=120)
                queued_overhead.append(time.perf_counter() - start - engine_seconds(job_id))
            # Queued, all at once: throughput.
            start = time.perf_counter()
            ids = [submit(app, tenant, q, levels=LEVELS, max_answer_tokens=64) for q in questions]
            for job_id in ids:
                wait_terminal(job_id, timeout_s=300)
            queued_rate = jobs / (time.perf_counter() - start)
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.wait(timeout=30)
            app.close()
        # In-process, same steps, no queue.
        run = inline_driver()
        inline_overhead = []
        start_all = time.perf_counter()
        for question in questions:
            start = time.perf_counter()
            job_id = submit(app, tenant, question, levels=LEVELS, max_answer_tokens=64, start=False)
            run(job_id)
            inline_overhead.append(time.perf_counter() - start - engine_seconds(job_id))
        inline_rate = jobs / (time.perf_counter() - start_all)
    print(f"\n== sim {label} ({jobs} jobs, levels {LEVELS}, stop at level 1) ==")
    print(
        f"queued     {queued_rate:7.2f} jobs/s (all at once)  "
        f"overhead/job {percentiles(queued_overhead)}"
    )
    print(
        f"in-process {inline_rate:7.2f} jobs/s (sequential)   "
        f"overhead/job {percentiles(inline_overhead)}"
    )
    ratio = statistics.median(queued_overhead) / statistics.median(inline_overhead)
    print(
        f"ratio queued/in-process, median overhead per job: {ratio:.2f}x; "
        f"throughput: {queued_rate / inline_rate:.2f}x"
    )
    return {"ratio": ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description="Pipeline orchestration overhead benchmark.")
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--latency-tokens-per-s", type=float, default=200.0)
    args = parser.parse_args()

    from alembic import command

    from tandem.commands.db import alembic_config

    binaries = find_binaries()
    start_postgres(INFRA, binaries)
    start_redis(INFRA, binaries)
    ensure_database(INFRA, "tandem_pipeline_bench", recreate=True)
    command.upgrade(alembic_config(DATABASE_URL), "head")
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    logs = ROOT / "test-artifacts" / "pipeline-bench"
    logs.mkdir(parents=True, exist_ok=True)
    measure("zero-latency", args.jobs, 0.0, logs)
    measure(f"{args.latency_tokens_per_s:g}-tok-per-s", args.jobs, args.latency_tokens_per_s, logs)


if __name__ == "__main__":
    main()
