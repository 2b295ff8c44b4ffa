"""Submissions per second through POST /v1/jobs and the reservation step's latency.

Runs against real Postgres and Redis (the local stack's servers, a scratch database
``tandem_bench`` and Redis db 14) and a real ``tandem api serve`` process. Prints figures and
ratios against baselines measured in the same run (GET /healthz throughput; a bare ``SELECT 1``
round trip); asserts nothing.

    python benchmarks/api_submit_bench.py [--submitters 200] [--requests 2000] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tandem.stack.binaries import find_binaries  # noqa: E402
from tandem.stack.infra import InfraConfig, ensure_database, start_postgres, start_redis  # noqa: E402
from tandem.stack.settings import StackSettings  # noqa: E402

INFRA = InfraConfig.from_settings(StackSettings(), base=ROOT)
DATABASE_URL = INFRA.database_url("tandem_bench")
REDIS_URL = INFRA.redis_url(14)
os.environ.update(
    {
        "TANDEM_DATABASE_URL": DATABASE_URL,
        "TANDEM_REDIS_URL": REDIS_URL,
        "TANDEM_LOG_JSON": "false",
        "TANDEM_LOG_LEVEL": "WARNING",
    }
)

import httpx  # noqa: E402
import redis  # noqa: E402
from sqlalchemy import text  # noqa: E402

from shared.db.models import Tenant  # noqa: E402
from shared.db.session import unit_of_work  # noqa: E402
from shared.settings import DEV_ADMIN_KEY  # noqa: E402
from shared.tenants import create_tenant  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def prepare() -> None:
    from alembic import command

    from tandem.commands.db import alembic_config

    binaries = find_binaries()
    start_postgres(INFRA, binaries)
    start_redis(INFRA, binaries)
    ensure_database(INFRA, "tandem_bench", recreate=True)
    command.upgrade(alembic_config(DATABASE_URL), "head")
    redis.Redis.from_url(REDIS_URL).flushdb()


def start_api(port: int, workers: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tandem",
            "api",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        cwd=ROOT,
        env=os.environ.copy(),
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("API did not start")


async def hammer(
    url: str, method: str, path: str, headers: dict[str, str], body: object, n: int, conc: int
) -> tuple[float, dict[int, int], list[float]]:
    """``n`` requests from ``conc`` concurrent submitters; (wall seconds, status counts, lats)."""
    counts: dict[int, int] = {}
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, timeout=120
    ) as client:

        async def submitter() -> None:
            while True:
                try:
                    queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                started = time.perf_counter()
                response = await client.request(method, path, json=body)
                latencies.append(time.perf_counter() - started)
                counts[response.status_code] = counts.get(response.status_code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(submitter() for _ in range(conc)))
        return time.perf_counter() - started, counts, latencies


def reservation_latency(
    tenant_id: uuid.UUID, threads: int, per_thread: int
) -> tuple[list[float], list[float], int]:
    """Run the API's own admission path (``service.submit_job``) from ``threads`` threads at
    once against one tenant's budget row, timing its reservation step (the conditional UPDATE,
    lock wait included) and, as a baseline, a bare ``SELECT 1`` on a checked-out connection."""
    from services.api import service
    from services.api.plans import load_profiles
    from services.api.publish import celery_publisher
    from services.api.schemas import JobCreate
    from services.api.settings import ApiSettings

    settings = ApiSettings()
    profiles = load_profiles()
    publish = celery_publisher()
    body = JobCreate.model_validate({"question": "What is 17 * 23?", "domain": "math"})
    step: list[float] = []
    baseline: list[float] = []
    lock = threading.Lock()
    real_reserve = service.reserve

    def timed_reserve(*args: object, **kwargs: object) -> object:
        started = time.perf_counter()
        try:
            return real_reserve(*args, **kwargs)  # type: ignore[arg-type]
        finally:
            took = time.perf_counter() - started
            with lock:
                step.append(took)

    service.reserve = timed_reserve  # type: ignore[assignment]
    barrier = threading.Barrier(threads)

    def run() -> None:
        with unit_of_work() as session:
            tenant = session.get(Tenant, tenant_id)
            assert tenant is not None
            session.execute(text("SELECT 1"))
            started = time.perf_counter()
            session.execute(text("SELECT 1"))
            with lock:
                baseline.append(time.perf_counter() - started)
        barrier.wait()
        for _ in range(per_thread):
            service.submit_job(settings, tenant, body, profiles=profiles, publish=publish)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - started
    service.reserve = real_reserve
    print(f"  in-process admissions: {threads * per_thread / wall:.1f} /s")
    return step, baseline, threads * per_thread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--submitters", type=int, default=200)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2, help="API server processes.")
    parser.add_argument("--port", type=int, default=18765)
    args = parser.parse_args()

    prepare()
    server = start_api(args.port, args.workers)
    url = f"http://127.0.0.1:{args.port}"
    try:
        admin = {"X-Admin-Key": DEV_ADMIN_KEY}
        cap = Decimal("0.5")
        tenant = httpx.post(
            f"{url}/v1/admin/tenants",
            headers=admin,
            json={"name": f"bench-{uuid.uuid4().hex[:6]}", "budget_cap": str(cap)},
        ).json()
        key = httpx.post(
            f"{url}/v1/admin/tenants/{tenant['id']}/keys", headers=admin, json={}
        ).json()["key"]
        auth = {"Authorization": f"Bearer {key}"}

        base_s, base_counts, _ = asyncio.run(
            hammer(url, "GET", "/healthz", {}, None, args.requests, args.submitters)
        )
        sub_s, sub_counts, sub_lat = asyncio.run(
            hammer(
                url,
                "POST",
                "/v1/jobs",
                auth,
                {"question": "What is 17 * 23?", "domain": "math", "allow_shrink": False},
                args.requests,
                args.submitters,
            )
        )
        budget = httpx.get(f"{url}/v1/admin/tenants/{tenant['id']}", headers=admin).json()["budget"]
        overshoot = Decimal(budget["spent"]) + Decimal(budget["reserved"]) - Decimal(budget["cap"])

        print(
            f"API processes: {args.workers}; concurrent submitters: {args.submitters}; "
            f"requests: {args.requests}"
        )
        print(f"baseline GET /healthz:  {args.requests / base_s:8.1f} req/s  {base_counts}")
        print(f"POST /v1/jobs:          {args.requests / sub_s:8.1f} req/s  {sub_counts}")
        print(f"  ratio to baseline:    {(args.requests / sub_s) / (args.requests / base_s):8.3f}")
        print(
            f"  request latency p50 {percentile(sub_lat, 0.5) * 1e3:.1f} ms, "
            f"p99 {percentile(sub_lat, 0.99) * 1e3:.1f} ms"
        )
        print(
            f"  cap {budget['cap']}, reserved {budget['reserved']}, overshoot "
            f"{max(overshoot, Decimal(0))} (none: {overshoot <= 0})"
        )

        with unit_of_work() as session:
            bench_tenant = create_tenant(
                session, f"reserve-{uuid.uuid4().hex[:6]}", budget_cap=Decimal(1_000_000)
            )
            tenant_id = bench_tenant.id
        per_thread = max(1, args.requests // args.submitters)
        print(
            f"reservation step ({args.submitters} threads x {per_thread}, one budget row, "
            f"pool of {os.environ.get('TANDEM_DB_POOL_SIZE', '10')}+overflow connections):"
        )
        step, baseline, _ = reservation_latency(tenant_id, args.submitters, per_thread)
        print(
            f"  reserve() p50 {percentile(step, 0.5) * 1e3:.2f} ms, "
            f"p99 {percentile(step, 0.99) * 1e3:.2f} ms"
        )
        print(
            f"  baseline SELECT 1 p50 {statistics.median(baseline) * 1e3:.2f} ms, "
            f"p99 {percentile(baseline, 0.99) * 1e3:.2f} ms"
        )
        print(f"  p50 ratio to baseline {percentile(step, 0.5) / statistics.median(baseline):.1f}x")
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
