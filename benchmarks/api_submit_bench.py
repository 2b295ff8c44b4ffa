"""What one accepted ``POST /v1/jobs`` costs, each figure beside its floor.

Runs a real ``tandem api serve`` process (``--workers``) against the stack's Postgres (a scratch
database ``tandem_bench``) and a Redis server of its own (so ``INFO commandstats`` counts this
run's commands only). Per accepted submission it prints:

- SQL statements (``pg_stat_statements`` of the bench database; BEGIN, COMMIT and ROLLBACK
  excluded), with each query's share, and transactions (``pg_stat_database``: commits +
  rollbacks, read once the server has reported them);
- Redis commands (``INFO commandstats`` deltas);
- API CPU (user + system time of the server and its worker processes, read around each
  phase's requests alone) over the CPU of one ``GET /healthz`` in the same run, the phases
  alternating in rounds;
- throughput of 50 clients on ONE tenant over 50 clients on 50 tenants (the budget-row lock),
  and the one-tenant phase's own statements, transactions, Redis commands and API CPU per
  submission (its concurrent submissions are admitted in batches, :mod:`services.api.jobs.lanes`);
- that the cap held under a concurrent burst against a small cap;
- the load generator's own CPU per request (aiohttp clients, :mod:`benchmarks.load`), so that
  a run whose client was the limit shows it;
- the floor under the CPU ratio: :mod:`benchmarks.bare_api` on the same server and worker
  count, doing only an admission's I/O (one ``INSERT``, one ``LPUSH``), its submission against
  its own ``/healthz``.

Bench tenants have no request limit: what is measured is admission, not the limiter. CPU
rather than wall time, and ratios against a request measured in the same run, because absolute
times on a shared machine are noise. Asserts nothing.

    python benchmarks/api_submit_bench.py [--requests 1000] [--clients 50] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import bare_api  # noqa: E402
from benchmarks.load import hammer as run_load  # noqa: E402
from tandem.stack.binaries import find_binaries  # noqa: E402
from tandem.stack.infra import (  # noqa: E402
    InfraConfig,
    ensure_database,
    start_postgres,
    start_redis,
    stop_redis,
)
from tandem.stack.processes import serving_api, serving_http  # noqa: E402
from tandem.stack.settings import StackSettings  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


INFRA = InfraConfig.from_settings(StackSettings(), base=ROOT)
# A Redis server of the bench's own: commandstats are per server, and tests share the stack's.
BENCH_REDIS = InfraConfig(
    root=Path(tempfile.mkdtemp(prefix="tandem-bench-")), redis_port=_free_port()
)
DATABASE = "tandem_bench"
DATABASE_URL = INFRA.database_url(DATABASE)
REDIS_URL = BENCH_REDIS.redis_url(0)
os.environ.update(
    {
        "TANDEM_DATABASE_URL": DATABASE_URL,
        "TANDEM_REDIS_URL": REDIS_URL,
        "TANDEM_LOG_JSON": "false",
        "TANDEM_LOG_LEVEL": "WARNING",
    }
)

import httpx  # noqa: E402
import psutil  # noqa: E402
import psycopg  # noqa: E402
import redis  # noqa: E402

from shared.settings import DEV_ADMIN_KEY  # noqa: E402

QUESTION = {"question": "What is 17 * 23?", "domain": "math", "allow_shrink": False}
# Floors of the admission path (issue "The job path at its physical floor").
STATEMENTS_FLOOR = 3
TRANSACTIONS_FLOOR = 1
REDIS_FLOOR = 4
CPU_RATIO_FLOOR = 3.0
ONE_TENANT_FLOOR = 0.80
ROUNDS = 4  # each phase is measured in this many rounds, the phases alternating


def prepare() -> None:
    from alembic import command

    from tandem.commands.db import alembic_config

    binaries = find_binaries()
    start_postgres(INFRA, binaries)
    start_redis(BENCH_REDIS, binaries)
    redis.Redis.from_url(REDIS_URL).flushall()  # what a killed run left in the snapshot
    ensure_database(INFRA, DATABASE, recreate=True)
    command.upgrade(alembic_config(DATABASE_URL), "head")
    with _pg() as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")


def _pg() -> psycopg.Connection[tuple[Any, ...]]:
    connection: psycopg.Connection[tuple[Any, ...]] = psycopg.connect(
        host=INFRA.host, port=INFRA.pg_port, user="tandem", dbname=DATABASE, autocommit=True
    )
    return connection


@dataclass(frozen=True)
class Counters:
    statements: int
    transactions: int
    redis_commands: int
    by_query: dict[str, int]

    def __sub__(self, other: Counters) -> Counters:
        return Counters(
            self.statements - other.statements,
            self.transactions - other.transactions,
            self.redis_commands - other.redis_commands,
            {q: n - other.by_query.get(q, 0) for q, n in self.by_query.items()},
        )

    def __add__(self, other: Counters) -> Counters:
        queries = self.by_query.keys() | other.by_query.keys()
        return Counters(
            self.statements + other.statements,
            self.transactions + other.transactions,
            self.redis_commands + other.redis_commands,
            {q: self.by_query.get(q, 0) + other.by_query.get(q, 0) for q in queries},
        )


# An idle backend reports its transaction counts up to 10 s late (Postgres's idle stats
# interval): waiting this long before reading them puts each phase's transactions in that phase.
STATS_FLUSH_S = 11.0


def counters() -> Counters:
    """Statements, transactions and Redis commands so far. Not CPU: this waits for the
    statistics to be flushed, and the API's idle CPU meanwhile is no request's (it is read
    around each phase's requests alone)."""
    time.sleep(STATS_FLUSH_S)
    with _pg() as conn:
        rows = conn.execute(
            "SELECT left(regexp_replace(s.query, '\\s+', ' ', 'g'), 60), SUM(s.calls)::int "
            "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
            "WHERE d.datname = %s AND upper(trim(s.query)) NOT IN ('COMMIT', 'ROLLBACK') "
            "AND upper(s.query) NOT LIKE 'BEGIN%%' "
            "GROUP BY 1",
            (DATABASE,),
        ).fetchall()
        by_query = {str(query): int(calls) for query, calls in rows}
        row = conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
            (DATABASE,),
        ).fetchone()
        transactions = int(row[0]) if row else 0
    stats = redis.Redis.from_url(REDIS_URL).info("commandstats")
    commands = sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")
    return Counters(sum(by_query.values()), transactions, commands, by_query)


def cpu_of(server: psutil.Process) -> float:
    """User + system CPU seconds of a server and its worker processes."""
    cpu = 0.0
    for process in [server, *server.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        cpu += times.user + times.system
    return cpu


@dataclass(frozen=True)
class Measured:
    """One phase of load: the server's CPU over it, its wall time and its answers by status."""

    cpu_s: float
    wall_s: float
    statuses: dict[int, int]


def measured_hammer(
    server: psutil.Process,
    url: str,
    method: str,
    path: str,
    keys: list[str | None],
    body: object,
    n: int,
    conc: int,
) -> Measured:
    """:func:`hammer`, with the server's CPU read around the requests alone."""
    started = cpu_of(server)
    wall_s, statuses = hammer(url, method, path, keys, body, n, conc)
    return Measured(cpu_of(server) - started, wall_s, statuses)


def bare_floor(workers: int, n: int, conc: int) -> tuple[float, float]:
    """CPU per ``/healthz`` and per submission of :mod:`benchmarks.bare_api` (the I/O an
    admission cannot do without, on the same server), in seconds."""
    with _pg() as conn:
        conn.execute(bare_api.CREATE_TABLE)

    def command(port: int) -> list[str]:
        run = (
            "import uvicorn; uvicorn.run('benchmarks.bare_api:create_app', factory=True, "
            f"host='127.0.0.1', port={port}, workers={workers}, log_config=None)"
        )
        return [sys.executable, "-c", run]

    with serving_http(command, {"PYTHONPATH": str(ROOT)}) as (url, server):
        process = psutil.Process(server.pid)
        hammer(url, "GET", "/healthz", [None], None, 200, conc)
        for _ in range(4):
            hammer(url, "POST", "/v1/jobs", [None], QUESTION, 2 * conc, conc)
        # In alternating rounds, as the API's phases: a drifting background load weighs on both.
        health = submit = 0.0
        accepted = 0
        for _ in range(ROUNDS):
            health += measured_hammer(
                process, url, "GET", "/healthz", [None], None, n // ROUNDS, conc
            ).cpu_s
            posted = measured_hammer(
                process, url, "POST", "/v1/jobs", [None], QUESTION, n // ROUNDS, conc
            )
            submit += posted.cpu_s
            accepted += posted.statuses.get(202, 0)
    return health / (ROUNDS * (n // ROUNDS)), submit / max(accepted, 1)


# Requests whose connection failed (status 0 in the counts), by error.
TRANSPORT_ERRORS: Counter[str] = Counter()


def hammer(
    url: str, method: str, path: str, keys: list[str | None], body: object, n: int, conc: int
) -> tuple[float, dict[int, int]]:
    """``n`` requests from ``conc`` concurrent clients; returns (wall seconds, status counts)."""
    load = run_load(url, method, path, n=n, clients=conc, keys=keys, bodies=[body])
    TRANSPORT_ERRORS.update(load.errors)
    return load.wall_s, dict(load.statuses)


def make_tenant(url: str, cap: Decimal) -> tuple[str, str]:
    admin = {"X-Admin-Key": DEV_ADMIN_KEY}
    tenant = httpx.post(
        f"{url}/v1/admin/tenants",
        headers=admin,
        # No request limit: what is measured is admission, not the limiter refusing.
        json={
            "name": f"bench-{uuid.uuid4().hex[:8]}",
            "budget_cap": str(cap),
            "rate_limit_rpm": 1_000_000,
        },
        timeout=30,
    ).json()
    key = httpx.post(
        f"{url}/v1/admin/tenants/{tenant['id']}/keys", headers=admin, json={}, timeout=30
    ).json()["key"]
    return str(tenant["id"]), str(key)


def verdict(ok: bool) -> str:
    return "ok" if ok else "ABOVE FLOOR"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000, help="Requests per phase.")
    parser.add_argument("--clients", type=int, default=50, help="Concurrent clients.")
    parser.add_argument("--workers", type=int, default=2, help="API server processes.")
    args = parser.parse_args()

    prepare()
    n, conc = args.requests, args.clients
    try:
        with serving_api(workers=args.workers) as (url, server):
            process = psutil.Process(server.pid)
            big = Decimal(1_000_000)
            many = [make_tenant(url, big) for _ in range(conc)]
            _, one_key = make_tenant(url, big)
            many_keys: list[str | None] = [k for _, k in many]
            # Warm both paths (pools, caches, imports) outside the measured phases, until each
            # API process has likely seen every key and opened its pool: what is measured is the
            # steady state, not each process's first use of a key or a connection.
            hammer(url, "GET", "/healthz", [None], None, 200, conc)
            for _ in range(4):  # each round on new connections, spread anew over the processes
                hammer(url, "POST", "/v1/jobs", many_keys, QUESTION, 2 * conc, conc)
            hammer(url, "POST", "/v1/jobs", [one_key], QUESTION, 4 * conc, conc)

            # The phases alternate in rounds (/healthz, 50 tenants, one tenant), so that a
            # background load that drifts during the run weighs on all alike. The table's counts
            # are the 50-tenant rounds'; the one-tenant rounds are counted apart.
            health_s = health_cpu_s = submit_cpu_s = client_health = 0.0
            health_counts: Counter[int] = Counter()
            many_s = one_s = client_submit = 0.0
            many_counts: Counter[int] = Counter()
            one_counts: Counter[int] = Counter()
            measured: Counters | None = None
            one_measured: Counters | None = None
            one_cpu_s = 0.0
            for _ in range(ROUNDS):
                client_started = time.process_time()
                health = measured_hammer(
                    process, url, "GET", "/healthz", [None], None, n // ROUNDS, conc
                )
                client_health += time.process_time() - client_started
                health_cpu_s += health.cpu_s
                health_s += health.wall_s
                health_counts.update(health.statuses)
                start = counters()
                client_started = time.process_time()
                spread = measured_hammer(
                    process, url, "POST", "/v1/jobs", many_keys, QUESTION, n // ROUNDS, conc
                )
                client_submit += time.process_time() - client_started
                submit_cpu_s += spread.cpu_s
                delta = counters() - start
                measured = delta if measured is None else measured + delta
                many_s += spread.wall_s
                many_counts.update(spread.statuses)
                start = counters()
                alone = measured_hammer(
                    process, url, "POST", "/v1/jobs", [one_key], QUESTION, n // ROUNDS, conc
                )
                delta = counters() - start
                one_measured = delta if one_measured is None else one_measured + delta
                one_cpu_s += alone.cpu_s
                one_s += alone.wall_s
                one_counts.update(alone.statuses)
            assert measured is not None and one_measured is not None
            n = ROUNDS * (n // ROUNDS)

            accepted = max(many_counts.get(202, 0), 1)
            health_cpu = health_cpu_s / n
            submit_cpu = submit_cpu_s / accepted
            statements = measured.statements / accepted
            transactions = measured.transactions / accepted
            commands = measured.redis_commands / accepted
            many_rate, one_rate = n / many_s, n / one_s
            cpu_ratio = submit_cpu / health_cpu if health_cpu else float("inf")

            # The cap under a concurrent burst: spent + reserved never above it.
            cap = Decimal("0.05")
            small_id, small_key = make_tenant(url, cap)
            _, burst_counts = hammer(url, "POST", "/v1/jobs", [small_key], QUESTION, 4 * conc, conc)
            budget = httpx.get(
                f"{url}/v1/admin/tenants/{small_id}", headers={"X-Admin-Key": DEV_ADMIN_KEY}
            ).json()["budget"]
            overshoot = (
                Decimal(budget["spent"]) + Decimal(budget["reserved"]) - Decimal(budget["cap"])
            )

            print(f"API processes: {args.workers}; clients: {conc}; requests per phase: {n}")
            print(f"GET /healthz:                {n / health_s:8.1f} req/s  {dict(health_counts)}")
            print(f"POST /v1/jobs (50 tenants):  {many_rate:8.1f} req/s  {dict(many_counts)}")
            print(f"POST /v1/jobs (one tenant):  {one_rate:8.1f} req/s  {dict(one_counts)}")
            print(f"{'per accepted submission':34} {'now':>9} {'floor':>7}")
            rows = [
                (
                    "SQL statements",
                    f"{statements:.2f}",
                    f"<= {STATEMENTS_FLOOR}",
                    statements <= STATEMENTS_FLOOR,
                ),
                (
                    "SQL transactions",
                    f"{transactions:.2f}",
                    f"<= {TRANSACTIONS_FLOOR}",
                    transactions <= TRANSACTIONS_FLOOR,
                ),
                ("Redis commands", f"{commands:.2f}", f"<= {REDIS_FLOOR}", commands <= REDIS_FLOOR),
                (
                    "API CPU / GET /healthz CPU",
                    f"{cpu_ratio:.1f}x",
                    f"<= {CPU_RATIO_FLOOR:.0f}x",
                    cpu_ratio <= CPU_RATIO_FLOOR,
                ),
                (
                    "one tenant / 50 tenants req/s",
                    f"{one_rate / many_rate:.2f}",
                    f">= {ONE_TENANT_FLOOR}",
                    one_rate / many_rate >= ONE_TENANT_FLOOR,
                ),
            ]
            for name, now, floor, ok in rows:
                print(f"  {name:32} {now:>9} {floor:>7}  {verdict(ok)}")
            print("  statements per accepted submission, by query:")
            for query, calls in sorted(measured.by_query.items(), key=lambda item: -item[1]):
                if calls:
                    print(f"    {calls / accepted:5.2f}  {query}")
            print(
                f"  (API CPU: {submit_cpu * 1e3:.2f} ms per submission, "
                f"{health_cpu * 1e3:.2f} ms per /healthz)"
            )
            # One tenant's concurrent submissions share a lane and go in batches
            # (services.api.jobs.lanes): fewer statements than submissions.
            one_accepted = max(one_counts.get(202, 0), 1)
            print(
                f"  one tenant, per accepted submission: "
                f"{one_measured.statements / one_accepted:.2f} statements, "
                f"{one_measured.transactions / one_accepted:.2f} transactions, "
                f"{one_measured.redis_commands / one_accepted:.2f} Redis commands, API CPU "
                f"{one_cpu_s / one_accepted * 1e3:.2f} ms "
                f"({one_cpu_s / one_accepted / health_cpu:.1f}x /healthz); by query:"
            )
            for query, calls in sorted(one_measured.by_query.items(), key=lambda item: -item[1]):
                if calls:
                    print(f"    {calls / one_accepted:5.2f}  {query}")
            print(
                f"  (load generator: {client_health / n * 1e3:.2f} ms of CPU per /healthz, "
                f"{client_submit / n * 1e3:.2f} ms per submission)"
            )
            print(
                f"  cap {budget['cap']}: spent {budget['spent']} + reserved {budget['reserved']}, "
                f"overshoot {max(overshoot, Decimal(0))}  {verdict(overshoot <= 0)}  {burst_counts}"
            )
        # The floor under the ratio: the same server doing only an admission's I/O.
        bare_health, bare_submit = bare_floor(args.workers, n, conc)
        print(
            f"  bare admission (benchmarks/bare_api.py: one INSERT, one LPUSH): "
            f"{bare_submit * 1e3:.2f} ms per submission, {bare_health * 1e3:.2f} ms per "
            f"/healthz, {bare_submit / bare_health:.1f}x; the API's submission is "
            f"{submit_cpu / bare_submit:.1f}x the bare one"
        )
        for error, count in TRANSPORT_ERRORS.most_common():
            print(f"  connection failed ({count}x): {error}")
    finally:
        stop_redis(BENCH_REDIS)
        shutil.rmtree(BENCH_REDIS.root, ignore_errors=True)


if __name__ == "__main__":
    main()
