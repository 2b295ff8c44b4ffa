"""Jobs through the whole pipeline (four real ``tandem worker`` services over Redis) against
the same steps run in-process with no queue, with the simulator engine at zero and at a
realistic latency.

For each latency it reports, for the queued system: jobs per second with all jobs submitted at
once, and per-job orchestration overhead (end-to-end time minus the engine time its model
calls recorded; one job at a time) at p50/p95/p99; the same for the in-process driver, with
the CPU its steps take in this process, in all and per step (what the steps cost without the
queue, beside the workers' CPU); and the ratios queued / in-process of the median overhead and
of the median time per job (the floor of the latter: 1.10x at 200 tokens/s).

At zero latency it also sends jobs one at a time through a real ``tandem api serve`` process
and prints, per job and beside the floor each should stay under: the CPU time of the API and of
each worker service (its whole process tree; engines, Postgres and Redis excluded), as a ratio
to the API's CPU per ``GET /healthz`` measured in the same run (in rounds between the jobs);
SQL statements and transactions (``pg_stat_statements``, this database only; the benchmark's
own observer queries excluded); Redis commands (``INFO commandstats``) and Celery messages
(``LPUSH``). CPU time per process, not wall time, so a busy shared machine changes the figures
little. Then the same at saturation: the jobs submitted at once by many clients, their
orchestration CPU per job over the API's CPU per ``/healthz`` request under as many clients.

Real Postgres (the local stack's server, scratch database ``tandem_pipeline_bench``; statement
counts need ``pg_stat_statements`` preloaded, as ``tandem stack`` starts it) and a Redis server
of its own (so that nobody else's commands are counted). Asserts nothing.

    python benchmarks/pipeline_bench.py [--jobs 20] [--latency-tokens-per-s 200] [--detail]
                                        [--pool threads,prefork]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.load import hammer as run_load  # noqa: E402
from tandem.stack.binaries import find_binaries  # noqa: E402
from tandem.stack.infra import (  # noqa: E402
    InfraConfig,
    ensure_database,
    start_postgres,
    start_redis,
)
from tandem.stack.processes import serving_api  # noqa: E402
from tandem.stack.settings import StackSettings  # noqa: E402
from tests.services.pipeline.support import free_port  # noqa: E402

INFRA = InfraConfig.from_settings(StackSettings(), base=ROOT)
# A Redis server of the benchmark's own: INFO commandstats counts a whole server.
REDIS_INFRA = InfraConfig.from_settings(
    StackSettings(redis_port=free_port(), dir=Path(".tandem") / "pipeline-bench"), base=ROOT
)
DATABASE = "tandem_pipeline_bench"
DATABASE_URL = INFRA.database_url(DATABASE)
REDIS_URL = REDIS_INFRA.redis_url(0)
os.environ.update(
    {
        "TANDEM_ENVIRONMENT": "test",
        "TANDEM_DATABASE_URL": DATABASE_URL,
        "TANDEM_REDIS_URL": REDIS_URL,
        "TANDEM_LOG_JSON": "false",
        "TANDEM_LOG_LEVEL": "WARNING",
    }
)
# The schedule the registered classifier (the shipped default) was calibrated for: a job with
# another one is refused (422 levels_not_calibrated).
LEVELS = (0, 32, 96, 192)
SERVICES = ("coordinator", "scorer", "executor", "accounting")
QUESTIONS = [f"What is {a} * {a + 4} + {2 * a + 4}?" for a in range(3, 60)]
IDLE_WINDOW_S = 3.0  # how long each process's idle CPU is measured before the counted jobs
OBSERVER = "bench_observer"  # marks the benchmark's own SQL, left out of the counts
HEALTHZ_REQUESTS = 1000
# ... asked in rounds spread over the counted jobs, so that a load that drifts during the run
# (these machines are shared) weighs on the baseline and on the jobs alike.
HEALTHZ_ROUNDS = 10
LOAD_CLIENTS = 50  # concurrent clients of the saturated phase

# The floors of a job that stops at level 1 (score 0, insights 1, score 1, answer, settle).
FLOOR_CPU_RATIO = 30.0
FLOOR_STATEMENTS = 30
FLOOR_TRANSACTIONS = 6  # admission and one per step
FLOOR_REDIS = 25
FLOOR_MESSAGES = 5  # the first step's and one per following step


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


def inline_driver(cpu_by_step: dict[str, float] | None = None) -> Callable[[uuid.UUID], None]:
    """Run a job's steps as plain calls, following the same next-task decisions, no queue;
    each step's CPU time (this process) is added to ``cpu_by_step`` under its task's name."""
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
            started = time.process_time()
            pending.extend(handlers[task.name](task.kwargs))
            if cpu_by_step is not None:
                spent = time.process_time() - started
                cpu_by_step[task.name.value] = cpu_by_step.get(task.name.value, 0.0) + spent

    return run


# -- counters: CPU per process tree, SQL, Redis ----------------------------------------------


def tree_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and its live descendants."""
    import psutil

    total = 0.0
    try:
        root = psutil.Process(pid)
        for process in [root, *root.children(recursive=True)]:
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
    except psutil.NoSuchProcess:
        pass
    return total


class Observer:
    """The benchmark's own Postgres connection: polls jobs and reads pg_stat_statements in
    autocommit (no BEGIN), every query marked so that it is left out of the counts."""

    def __init__(self) -> None:
        import psycopg

        self.conn = psycopg.connect(DATABASE_URL.replace("+psycopg", ""), autocommit=True)
        self.statements_available = self._prepare_statements()

    def _prepare_statements(self) -> bool:
        import psycopg

        preload = self.conn.execute(
            "SELECT current_setting('shared_preload_libraries') AS bench_observer"
        ).fetchone()
        if preload is None or "pg_stat_statements" not in str(preload[0]):
            return False
        try:
            self.conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        except psycopg.Error:
            return False
        return True

    def status(self, job_id: uuid.UUID) -> str:
        row = self.conn.execute(
            "SELECT status AS bench_observer FROM jobs WHERE id = %s", (job_id,)
        ).fetchone()
        return str(row[0]) if row else "missing"

    def wait_terminal(self, job_id: uuid.UUID, timeout_s: float = 120.0) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.status(job_id)
            if status in ("succeeded", "failed", "cancelled", "rejected"):
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {status}")
            time.sleep(0.01)

    def wait_all(self, job_ids: list[uuid.UUID], timeout_s: float = 300.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            row = self.conn.execute(
                "SELECT count(*) AS bench_observer FROM jobs WHERE id = ANY(%s) "
                "AND status IN ('succeeded', 'failed', 'cancelled', 'rejected')",
                (job_ids,),
            ).fetchone()
            if row is not None and row[0] == len(job_ids):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(job_ids) - (row[0] if row else 0)} jobs still running")
            time.sleep(0.05)

    def statements(self) -> dict[str, int]:
        """Calls per normalised statement in this database, the observer's own left out. One
        text can have several entries (the same statement planned with other parameter
        types): their calls are summed."""
        if not self.statements_available:
            return {}
        rows = self.conn.execute(
            "SELECT query AS bench_observer, sum(calls) FROM pg_stat_statements s "
            "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = current_database() "
            "GROUP BY query"
        ).fetchall()
        return {str(q): int(c) for q, c in rows if OBSERVER not in str(q)}


def redis_commands(client: Any) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def delta(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0) > 0}


TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK")


@dataclass
class Snapshot:
    cpu: dict[str, float]
    statements: dict[str, int]
    redis: dict[str, int]


def under_load(
    url: str,
    pids: Mapping[str, int],
    secret: str,
    body: Mapping[str, Any],
    jobs: int,
    observer: Observer,
) -> tuple[float, float, float]:
    """The same jobs at saturation: ``/healthz`` from :data:`LOAD_CLIENTS` concurrent clients,
    then every job submitted at once by as many. Returns the orchestration CPU per job (every
    process in ``pids``), the API's CPU per ``/healthz`` request under that load, and jobs/s.
    A process busy with many requests or messages spends less on each than one woken for each
    alone (the sequential figures above), so both sides of the ratio are taken this way."""
    before = tree_cpu(pids["api"])
    run_load(url, "GET", "/healthz", n=HEALTHZ_REQUESTS, clients=LOAD_CLIENTS)
    healthz = (tree_cpu(pids["api"]) - before) / HEALTHZ_REQUESTS
    bodies = [{**body, "question": q} for q in QUESTIONS]
    cpu_before = sum(tree_cpu(pid) for pid in pids.values())
    started = time.perf_counter()
    load = run_load(
        url,
        "POST",
        "/v1/jobs",
        n=jobs,
        clients=LOAD_CLIENTS,
        keys=[secret],
        bodies=bodies,
        collect=True,
    )
    if load.statuses != {202: jobs}:
        raise RuntimeError(f"submissions under load answered {dict(load.statuses)}")
    observer.wait_all([uuid.UUID(answer["id"]) for answer in load.answers])
    rate = jobs / (time.perf_counter() - started)
    time.sleep(0.5)  # the last settlement's bookkeeping
    return (sum(tree_cpu(pid) for pid in pids.values()) - cpu_before) / jobs, healthz, rate


def count_per_job(
    jobs: int,
    env: Mapping[str, str],
    workers: Mapping[str, subprocess.Popen[bytes]],
    logs: Path,
    detail: bool,
    pool: str,
) -> float:
    """Jobs one at a time through the real API; every counter's delta divided by the jobs.
    Returns the orchestration CPU per job over a ``/healthz`` request's."""
    import httpx
    import redis

    from shared.db.session import unit_of_work
    from shared.tenants.service import create_key, create_tenant

    with unit_of_work() as session:
        tenant = create_tenant(
            session,
            f"bench-{uuid.uuid4().hex[:8]}",
            budget_cap=Decimal(1000),
            rate_limit_rpm=1_000_000,  # the saturated phase submits every job at once
        )
        secret = create_key(session, tenant).secret
    observer = Observer()
    broker = redis.Redis.from_url(REDIS_URL)
    with serving_api(env, log=logs / "api.log") as (url, api):
        pids = {"api": api.pid, **{name: p.pid for name, p in workers.items()}}
        with httpx.Client(base_url=url, timeout=60) as client:
            for _ in range(20):  # warm: imports, connection pools, first-request caches
                client.get("/healthz")

            def healthz_round() -> float:
                """API CPU of one round of ``/healthz`` requests."""
                before = tree_cpu(api.pid)
                for _ in range(HEALTHZ_REQUESTS // HEALTHZ_ROUNDS):
                    client.get("/healthz")
                return tree_cpu(api.pid) - before

            headers = {"Authorization": f"Bearer {secret}"}
            body = {
                "question": "",
                "domain": "math",
                "levels": list(LEVELS),
                "max_answer_tokens": 64,
            }

            def one(question: str) -> None:
                response = client.post(
                    "/v1/jobs", json={**body, "question": question}, headers=headers
                )
                response.raise_for_status()
                observer.wait_terminal(uuid.UUID(response.json()["id"]))

            one(QUESTIONS[0])  # warm the job path once in every process
            time.sleep(0.5)

            def snapshot() -> Snapshot:
                return Snapshot(
                    {name: tree_cpu(pid) for name, pid in pids.items()},
                    observer.statements(),
                    redis_commands(broker),
                )

            # What each process spends with nothing to do (polls, heartbeats, timers): the
            # share of the per-job figures that is not the jobs'.
            idle_start, idle_from = snapshot(), time.perf_counter()
            time.sleep(IDLE_WINDOW_S)
            idle_end, idle_s = snapshot(), time.perf_counter() - idle_from
            first, started = snapshot(), time.perf_counter()
            healthz_cpu, rounds = 0.0, 0
            every = max(1, jobs // HEALTHZ_ROUNDS)
            for i in range(jobs):
                if i % every == 0 and rounds < HEALTHZ_ROUNDS:
                    healthz_cpu += healthz_round()
                    rounds += 1
                one(QUESTIONS[(i + 1) % len(QUESTIONS)])
            time.sleep(0.5)  # let the last settle's bookkeeping finish
            last, elapsed = snapshot(), time.perf_counter() - started
        saturated = under_load(url, pids, secret, body, jobs, observer)
    observer.conn.close()
    healthz = healthz_cpu / (rounds * (HEALTHZ_REQUESTS // HEALTHZ_ROUNDS))
    cpu = {name: (last.cpu[name] - first.cpu[name]) / jobs for name in pids}
    cpu["api"] -= healthz_cpu / jobs  # the baseline's requests were served in the same window
    # Idle CPU at the same rate over the measured run, per job.
    idle = {
        name: (idle_end.cpu[name] - idle_start.cpu[name]) / idle_s * elapsed / jobs for name in pids
    }
    total_cpu = sum(cpu.values())
    statements = delta(last.statements, first.statements)
    transactions = sum(n for q, n in statements.items() if q.upper().startswith("BEGIN"))
    sql = sum(n for q, n in statements.items() if not q.upper().startswith(TRANSACTION_CONTROL))
    commands = delta(last.redis, first.redis)
    print(
        f"\n== per job, through the API, {pool} pool "
        f"({jobs} jobs one at a time, stop at level 1) =="
    )
    print(f"{'figure':<34}{'per job':>12}{'floor':>12}")
    print(f"{'/healthz request, API CPU':<34}{healthz * 1000:>9.2f} ms{'':>12}")
    for name in pids:
        print(
            f"{'CPU ' + name:<34}{cpu[name] * 1000:>9.2f} ms{cpu[name] / healthz:>9.1f} x"
            f"   (idle at the same rate: {idle[name] * 1000:.2f} ms)"
        )
    print(
        f"{'CPU orchestration (sum)':<34}{total_cpu * 1000:>9.2f} ms"
        f"{'':>3}{total_cpu / healthz:>6.1f} x /healthz (floor {FLOOR_CPU_RATIO:g} x)"
    )
    job_cpu, healthz_loaded, rate = saturated
    print(
        f"{'at saturation (all at once)':<34}{job_cpu * 1000:>9.2f} ms"
        f"{'':>3}{job_cpu / healthz_loaded:>6.1f} x /healthz under {LOAD_CLIENTS} clients "
        f"({healthz_loaded * 1000:.3f} ms); {rate:.1f} jobs/s"
    )
    if statements or observer.statements_available:
        print(f"{'SQL statements':<34}{sql / jobs:>12.1f}{FLOOR_STATEMENTS:>12}")
        print(f"{'SQL transactions':<34}{transactions / jobs:>12.1f}{FLOOR_TRANSACTIONS:>12}")
    else:
        print(f"{'SQL statements':<34}{'n/a (pg_stat_statements not preloaded)':>24}")
    print(f"{'Redis commands':<34}{sum(commands.values()) / jobs:>12.1f}{FLOOR_REDIS:>12}")
    print(
        f"{'Celery messages (LPUSH)':<34}{commands.get('lpush', 0) / jobs:>12.1f}"
        f"{FLOOR_MESSAGES:>12}"
    )
    if detail:
        print("-- Redis commands per job --")
        for name, n in sorted(commands.items(), key=lambda kv: -kv[1]):
            print(f"  {n / jobs:7.2f}  {name}")
        print("-- SQL statements per job --")
        for query, n in sorted(statements.items(), key=lambda kv: -kv[1]):
            print(f"  {n / jobs:7.2f}  {' '.join(query.split())[:150]}")
    return total_cpu / healthz


def worker_command(service: str, pool: str, profile: Path | None) -> list[str]:
    """A worker's command line; under ``py-spy record`` (its whole process tree, threads
    holding the GIL only, collapsed stacks) when profiling."""
    command = [sys.executable, "-m", "tandem", "worker", service, "--concurrency", "2"]
    command += ["--pool", pool]
    if profile is None:
        return command
    output = profile / f"{service}.txt"
    spy = Path(sys.executable).with_name("py-spy")
    return [
        str(spy),
        "record",
        "--subprocesses",
        "--gil",  # only threads holding the GIL: the samples follow CPU, not waits
        "--format",
        "raw",
        "-r",
        "250",
        "-o",
        str(output),
        "--",
        *command,
    ]


def stop(process: subprocess.Popen[bytes], profiled: bool) -> None:
    # py-spy writes its profile on SIGINT and passes it on to the worker.
    process.send_signal(signal.SIGINT if profiled else signal.SIGTERM)


def measure(
    label: str,
    jobs: int,
    tokens_per_s: float,
    logs: Path,
    *,
    counted: bool,
    detail: bool,
    pool: str,
    profile: Path | None = None,
) -> dict[str, float]:
    from celery import Celery

    from shared.celery_base import producer_app
    from tests.services.pipeline.support import make_tenant, sim_engines, submit

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
        env = {**os.environ, **engines.env()}
        workers = {
            s: subprocess.Popen(
                worker_command(s, pool, profile),
                stdout=(logs / f"{label}-worker-{s}.log").open("wb"),
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
            for s in SERVICES
        }
        try:
            wait_for_workers(app)
            questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(jobs)]
            observer = Observer()  # polls every 10 ms: the wait adds little to what is measured
            # Queued, one at a time: per-job orchestration overhead.
            queued_overhead, queued_wall = [], []
            for question in questions:
                start = time.perf_counter()
                job_id = submit(app, tenant, question, levels=LEVELS, max_answer_tokens=64)
                observer.wait_terminal(job_id, timeout_s=120)
                queued_wall.append(time.perf_counter() - start)
                queued_overhead.append(queued_wall[-1] - engine_seconds(job_id))
            # Queued, all at once: throughput.
            start = time.perf_counter()
            ids = [submit(app, tenant, q, levels=LEVELS, max_answer_tokens=64) for q in questions]
            for job_id in ids:
                observer.wait_terminal(job_id, timeout_s=300)
            queued_rate = jobs / (time.perf_counter() - start)
            observer.conn.close()
            if counted:
                cpu_ratio = count_per_job(jobs, env, workers, logs / label, detail, pool)
        finally:
            for worker in workers.values():
                stop(worker, profile is not None)
            for worker in workers.values():
                worker.wait(timeout=60)
            app.close()
        # In-process, same steps, no queue.
        step_cpu: dict[str, float] = {}
        # One job first, as the workers had before theirs were counted: this process's first
        # engine call imports the engine clients' modules and opens their connections.
        warm = submit(app, tenant, questions[0], levels=LEVELS, max_answer_tokens=64, start=False)
        inline_driver()(warm)
        run = inline_driver(step_cpu)
        inline_overhead, inline_wall = [], []
        inline_cpu = 0.0  # this process's CPU in the steps (its engine loop included)
        start_all = time.perf_counter()
        for question in questions:
            start = time.perf_counter()
            job_id = submit(app, tenant, question, levels=LEVELS, max_answer_tokens=64, start=False)
            cpu_from = time.process_time()
            run(job_id)
            inline_cpu += time.process_time() - cpu_from
            inline_wall.append(time.perf_counter() - start)
            inline_overhead.append(inline_wall[-1] - engine_seconds(job_id))
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
    print(
        f"in-process CPU per job, the steps alone in one process: {inline_cpu / jobs * 1000:.2f} ms"
        " (compare: the workers' CPU per job above)"
    )
    print(
        "  by step, per job: "
        + ", ".join(f"{name} {cpu / jobs * 1000:.2f} ms" for name, cpu in sorted(step_cpu.items()))
    )
    ratio = statistics.median(queued_overhead) / statistics.median(inline_overhead)
    wall = statistics.median(queued_wall) / statistics.median(inline_wall)
    print(
        f"ratio queued/in-process, median overhead per job: {ratio:.2f}x; "
        f"median time per job: {wall:.2f}x (floor 1.10x at 200 tok/s); "
        f"throughput: {queued_rate / inline_rate:.2f}x"
    )
    return {"ratio": ratio, **({"cpu_ratio": cpu_ratio} if counted else {})}


@contextmanager
def bench_servers() -> Iterator[None]:
    """The stack's Postgres with this benchmark's scratch database migrated afresh, and a Redis
    server of the benchmark's own, shut down on exit."""
    from alembic import command

    from tandem.commands.db import alembic_config

    binaries = find_binaries()
    start_postgres(INFRA, binaries)
    start_redis(REDIS_INFRA, binaries)
    import redis

    # A run that was killed left its messages in the server's snapshot: a fresh run would
    # consume (and count) them.
    redis.Redis.from_url(REDIS_URL).flushall()
    try:
        ensure_database(INFRA, DATABASE, recreate=True)
        command.upgrade(alembic_config(DATABASE_URL), "head")
        yield
    finally:
        redis.Redis.from_url(REDIS_URL).shutdown(nosave=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="Pipeline orchestration overhead benchmark.")
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--latency-tokens-per-s", type=float, default=200.0)
    parser.add_argument(
        "--detail", action="store_true", help="Per-statement and per-command counts."
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="Record each worker at zero latency with py-spy into this folder (collapsed stacks).",
    )
    parser.add_argument(
        "--pool",
        default="threads,prefork",
        help="The workers' Celery pools, comma-separated: each is measured at zero latency, "
        "the first also at the given latency (default: the default pool, then prefork).",
    )
    args = parser.parse_args()
    with bench_servers():
        logs = ROOT / "test-artifacts" / "pipeline-bench"
        logs.mkdir(parents=True, exist_ok=True)
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
        pools = args.pool.split(",")
        ratios: dict[str, float] = {}
        for pool in pools:
            ratios[pool] = measure(
                f"zero-latency-{pool}",
                args.jobs,
                0.0,
                logs,
                counted=True,
                detail=args.detail,
                pool=pool,
                profile=args.profile,
            )["cpu_ratio"]
        measure(
            f"{args.latency_tokens_per_s:g}-tok-per-s",
            args.jobs,
            args.latency_tokens_per_s,
            logs,
            counted=False,
            detail=False,
            pool=pools[0],
        )
        if len(ratios) > 1:
            print("\n== orchestration CPU per job ÷ /healthz, by pool (this run) ==")
            base = ratios[pools[0]]
            for pool, ratio in ratios.items():
                print(f"{pool:<10}{ratio:>8.1f} x   {ratio / base:5.2f} of {pools[0]}")


if __name__ == "__main__":
    main()
