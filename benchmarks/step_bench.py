"""What the parts of one pipeline step cost in CPU, each beside the leanest way to do the same
work, measured in the same run.

A step (``shared.jobs.steps.run``) reads the job, calls its engine, records the call and the
job's new state in one transaction, then publishes the next task. For each part this prints the
CPU time per operation of the code the workers run and of a bare equivalent that does the same
work over the same connection to the same server:

- **engine call**: ``call_engine`` (the role's pooled async client on the process's engine
  loop) against one POST of the same request on a pooled ``urllib3`` connection;
- **state read**: ``job_snapshot`` (its driver statement in a session on an autocommit
  connection) against the same ``SELECT`` on a raw psycopg connection, and the same statement
  executed by SQLAlchemy Core on a pooled connection beside them;
- **record transaction**: lock the row, update it, insert an event, commit, as the steps do
  (driver statements in a session's transaction), against the same three statements on raw
  psycopg;
- **publish**: ``shared.jobs.flow.publish`` (the message built, one ``LPUSH``) against an
  ``LPUSH`` of bytes built once; Celery's ``send_task`` of the same task beside them.

Then what delivering one message costs a worker before any step code runs: a real worker of a
no-op task (``noop_worker.py``, built like the services' apps) in the threads and the prefork
pool, CPU of its process tree per message, the messages pushed all at once; and in the threads
pool one at a time, as a job's steps reach the workers when jobs run one after another.

CPU time of this process (``time.process_time``: its engine loop included, the
simulator engine, Postgres and Redis excluded), so a busy machine changes the figures little;
the ratio column is what to compare. Needs the local stack's Postgres (a scratch database) and
starts a Redis server and the simulator engines of its own. Asserts nothing.

    python benchmarks/step_bench.py [--n 300]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.pipeline_bench import (  # noqa: E402
    DATABASE_URL,
    LEVELS,
    REDIS_URL,
    bench_servers,
    tree_cpu,
)

QUESTION = "What is 17 * 3 + 12?"
PROMPT = "Q: What is 17 * 3 + 12?\nA:"


def cpu_ms(operation: Callable[[], object], n: int) -> float:
    """CPU milliseconds per call, after a warm-up."""
    for _ in range(max(10, n // 10)):
        operation()
    started = time.process_time()
    for _ in range(n):
        operation()
    return (time.process_time() - started) * 1000 / n


def raw_connection(*, autocommit: bool) -> Any:
    """A psycopg connection of its own to the benchmark's database (no SQLAlchemy)."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(DATABASE_URL).set(drivername="postgresql")
    return psycopg.connect(url.render_as_string(hide_password=False), autocommit=autocommit)


def engine_call(n: int) -> tuple[float, float]:
    import urllib3

    from shared.db.models import Role
    from shared.engines.base import EngineClient, Generation
    from shared.engines.config import engine_config
    from shared.jobs.runner import call_engine

    async def generate(client: EngineClient) -> Generation:
        return await client.generate(PROMPT, max_new_tokens=16)

    ours = cpu_ms(lambda: call_engine(Role.EXECUTOR, generate), n)
    http = urllib3.PoolManager()
    url = engine_config(Role.EXECUTOR).url.rstrip("/") + "/generate"
    body = json.dumps(
        {
            "inputs": PROMPT,
            "parameters": {"max_new_tokens": 16, "details": True, "decoder_input_details": False},
        }
    ).encode()

    def bare() -> object:
        response = http.request(
            "POST", url, body=body, headers={"Content-Type": "application/json"}
        )
        return json.loads(response.data)

    return ours, cpu_ms(bare, n)


def state_read(job_id: uuid.UUID, n: int) -> tuple[float, float, float]:
    """The step's read, the bare one, and the same Core statement on a pooled autocommit
    connection with no session around it."""
    from sqlalchemy import bindparam, select

    from shared.db.models import Job
    from shared.db.session import get_engine
    from shared.jobs import repository as repo

    def ours() -> object:
        with repo.outside_transaction() as session:
            return repo.job_snapshot(session, job_id)

    core_query = select(*repo.STATE_COLUMNS, *repo.PROMPT_COLUMNS).where(
        Job.id == bindparam("job_id")
    )
    engine = get_engine().execution_options(isolation_level="AUTOCOMMIT")

    def core() -> object:
        with engine.connect() as connection:
            return connection.execute(core_query, {"job_id": job_id}).first()

    columns = ", ".join(c.key for c in (*repo.STATE_COLUMNS, *repo.PROMPT_COLUMNS))
    raw = raw_connection(autocommit=True)
    query = f"SELECT {columns} FROM jobs WHERE id = %s"  # noqa: S608 - column names, not input

    def bare() -> object:
        return raw.execute(query, (job_id,), prepare=True).fetchone()

    return cpu_ms(ours, n), cpu_ms(bare, n), cpu_ms(core, n)


def record_transaction(job_id: uuid.UUID, n: int) -> tuple[float, float]:
    from shared.db.session import unit_of_work
    from shared.jobs import repository as repo
    from shared.jobs.states import add_event

    def ours() -> None:
        with unit_of_work() as session:
            locked = repo.lock_state(session, job_id, with_spent=True)
            assert locked is not None
            job = locked[0]
            job.insight_tokens = job.insight_tokens + 1
            add_event(session, job, "bench", level=1, new_tokens=1)
            repo.save_state(session, job)

    raw = raw_connection(autocommit=False)

    def bare() -> None:
        with raw.transaction():
            status, tokens = raw.execute(
                "SELECT status, insight_tokens FROM jobs WHERE id = %s FOR UPDATE",
                (job_id,),
                prepare=True,
            ).fetchone()
            raw.execute(
                "UPDATE jobs SET insight_tokens = %s, updated_at = now() WHERE id = %s",
                (tokens + 1, job_id),
                prepare=True,
            )
            raw.execute(
                "INSERT INTO job_events (job_id, kind, status, level, data) "
                "VALUES (%s, %s, %s, %s, %s::jsonb)",
                (job_id, "bench", status, 1, json.dumps({"new_tokens": 1})),
                prepare=True,
            )

    return cpu_ms(ours, n), cpu_ms(bare, n)


def publish(n: int) -> tuple[float, float, float]:
    """``flow.publish`` (what a step runs), one bare ``LPUSH`` of a message built once, and
    Celery's ``send_task`` of the same task (how steps published before)."""
    import redis

    from shared.celery_base import producer_app, send
    from shared.jobs.flow import NextTask
    from shared.jobs.flow import publish as step_publish
    from shared.jobs.messages import task_message
    from shared.tasks import TaskName

    app = producer_app()
    task = NextTask(TaskName.SCORER_SCORE, {"job_id": str(uuid.uuid4()), "level": 1})
    ours = cpu_ms(lambda: step_publish(app, [task]), n)
    client = redis.Redis.from_url(REDIS_URL)
    queue = task.name.queue.value
    message = task_message(task.name, task.kwargs, expires_s=1200, traceparent="", origin="b")
    bare = cpu_ms(lambda: client.lpush(queue, message), n)
    celery = cpu_ms(lambda: send(app, task.name, task.kwargs), n)
    client.delete(queue)
    app.close()
    return ours, bare, celery


def celery_delivery(pool: str, n: int, *, paced: bool = False) -> float:
    """Worker CPU (its whole process tree) per message of a no-op task (``noop_worker.py``),
    messages pushed as the pipeline pushes them and consumed by a real worker in ``pool``: all
    at once, or ``paced``, each pushed once the one before has been acknowledged, as the steps
    of one job at a time reach a worker (each wakes it from its wait on the queue)."""
    import subprocess

    import redis

    from shared.jobs.messages import task_message
    from shared.tasks import TaskName

    client = redis.Redis.from_url(REDIS_URL)
    queue = TaskName.SCORER_SCORE.queue.value
    client.delete(queue)
    argv = [sys.executable, "-m", "celery", "-A", "noop_worker", "worker", "-Q", queue]
    argv += ["--pool", pool, "--concurrency", "2", "--loglevel", "WARNING"]
    argv += ["--without-heartbeat", "--without-gossip", "--without-mingle"]
    worker = subprocess.Popen(
        argv,
        cwd=Path(__file__).parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )

    def consumed(every_s: float) -> None:
        deadline = time.monotonic() + 120
        while client.llen(queue) or client.hlen("unacked"):  # kombu's hash of unacked deliveries
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {pool} worker did not consume its messages")
            time.sleep(every_s)

    def deliver(count: int) -> None:
        for i in range(count):
            kwargs = {"job_id": str(i), "level": 0}
            message = task_message(
                TaskName.SCORER_SCORE, kwargs, expires_s=600, traceparent="", origin="bench"
            )
            client.lpush(queue, message)
            if paced:
                consumed(0.002)
        consumed(0.02)

    try:
        deliver(max(50, n // 10))  # up, and warm
        before = tree_cpu(worker.pid)
        deliver(n)
        return (tree_cpu(worker.pid) - before) * 1000 / n
    finally:
        worker.terminate()
        worker.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description="CPU of a pipeline step's parts.")
    parser.add_argument("--n", type=int, default=300, help="Operations per measurement.")
    args = parser.parse_args()

    from tests.services.pipeline.support import make_tenant, sim_engines, submit

    with bench_servers():
        logs = ROOT / "test-artifacts" / "step-bench"
        with sim_engines(logs) as engines:
            os.environ.update(engines.env())
            from shared.celery_base import producer_app

            app = producer_app()
            job_id = submit(app, make_tenant(), QUESTION, levels=LEVELS, start=False)
            app.close()
            rows = [
                ("engine call", engine_call(args.n)),
                ("record transaction", record_transaction(job_id, args.n)),
            ]
            read, bare_read, core_read = state_read(job_id, args.n)
            rows.insert(1, ("state read", (read, bare_read)))
            published, built_once, celery_send = publish(args.n)
            rows.append(("publish next task", (published, built_once)))
        delivery = {pool: celery_delivery(pool, 4 * args.n) for pool in ("threads", "prefork")}
        delivery["threads, one at a time"] = celery_delivery("threads", args.n, paced=True)
    print(f"\n== CPU per operation, ms ({args.n} each; this process, engine loop included) ==")
    print(f"{'part':<22}{'the step':>10}{'bare':>10}{'ratio':>9}")
    for name, (ours, bare) in rows:
        print(f"{name:<22}{ours:>10.3f}{bare:>10.3f}{ours / bare:>8.1f}x")
    ours_sum = sum(ours for _, (ours, _) in rows)
    bare_sum = sum(bare for _, (_, bare) in rows)
    print(f"{'one step':<22}{ours_sum:>10.3f}{bare_sum:>10.3f}{ours_sum / bare_sum:>8.1f}x")
    print(f"{'(read, Core statement)':<22}{core_read:>10.3f}")
    print(f"{'(Celery send_task)':<22}{celery_send:>10.3f}")
    print("\n== a worker's CPU per delivered message, no-op task, ms ==")
    for pool, ms in delivery.items():
        print(f"{pool:<24}{ms:>10.3f}")


if __name__ == "__main__":
    main()
