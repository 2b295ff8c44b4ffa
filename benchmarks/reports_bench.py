"""Latency of each report query at a million jobs.

Seeds a scratch database ``tandem_reports_bench`` on the local stack's Postgres with N job rows
(default 1,000,000; generated server-side with ``generate_series``) spread over the last 90
days and 20 tenants with a skewed share (the largest holds about a fifth), and the roll-ups
settlement would have written for them (shared.rollups: usage, outcomes, latency and scores,
hourly and daily, per tenant and for all tenants); then runs every report the way the API does
(one unit of work, the service function) many times and prints p50/p95 per report, as ratios
against two baselines measured in the same run: a bare ``SELECT 1`` round trip, and a count of
the report's jobs over the same index range, beside the floor (p95 <= 50 ms). Asserts nothing.

    python benchmarks/reports_bench.py [--jobs 1000000] [--repeats 30] [--reuse [--rebuild-rollups]]

``--reuse`` keeps a database already seeded with as many jobs, migrates it, and rebuilds the
roll-ups when a migration ran or they are missing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tandem.stack.binaries import find_binaries  # noqa: E402
from tandem.stack.infra import InfraConfig, ensure_database, start_postgres  # noqa: E402
from tandem.stack.settings import StackSettings  # noqa: E402

INFRA = InfraConfig.from_settings(StackSettings(), base=ROOT)
DATABASE = "tandem_reports_bench"
DATABASE_URL = INFRA.database_url(DATABASE)
os.environ.update(
    {
        "TANDEM_DATABASE_URL": DATABASE_URL,
        "TANDEM_LOG_JSON": "false",
        "TANDEM_LOG_LEVEL": "WARNING",
    }
)

from sqlalchemy import text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from services.api.reports import service  # noqa: E402
from services.api.reports.baseline import BaselineTable  # noqa: E402
from services.api.reports.params import GroupKey, Scope, TimeRange  # noqa: E402
from shared.db.models import Policy, Tenant  # noqa: E402
from shared.db.session import get_engine, unit_of_work  # noqa: E402

DAYS = 90
FLOOR_MS = 50.0  # the p95 every report must stay within at a million jobs
CHUNK = 100_000

TENANTS_SQL = """
INSERT INTO tenants (id, name, budget_cap, webhook_secret)
SELECT gen_random_uuid(), 'bench-' || lpad(i::text, 3, '0'), 1000000, 'bench'
FROM generate_series(0, :tenants - 1) AS i
"""

# Every random draw is made once per row in the inner SELECT, so a row's status, latency,
# level and scores agree with each other. Tenant k gets a share ~ sqrt((k+1)/T) - sqrt(k/T).
JOBS_SQL = """
WITH t AS (SELECT array_agg(id ORDER BY name) AS ids FROM tenants)
INSERT INTO jobs (
    id, tenant_id, status, domain, policy, question, levels, max_answer_tokens,
    prompt_version, cost, created_at, updated_at, finished_at, truncation_level,
    termination_reason, scores
)
SELECT
    gen_random_uuid(),
    t.ids[1 + floor(:tenants * r.t * r.t)::int],
    r.status,
    CASE WHEN r.d < 0.5 THEN 'math' WHEN r.d < 0.8 THEN 'code' ELSE 'general' END,
    r.policy,
    'bench question',
    '[0, 100, 500, 1000]'::jsonb,
    512,
    'bench',
    round((r.c * CASE WHEN r.policy = 'llm_only' THEN 0.02 ELSE 0.008 END)::numeric, 12),
    r.created,
    r.created,
    CASE WHEN r.status IN ('succeeded', 'failed', 'cancelled')
         THEN r.created + interval '1 millisecond' * (300 + 60000 * r.c * r.c * r.c) END,
    r.level,
    CASE WHEN r.level IS NULL THEN NULL
         WHEN r.policy <> 'tandem' THEN 'policy'
         WHEN r.level = 3 THEN 'max_level'
         WHEN r.l < 0.1 THEN 'insights_finished'
         ELSE 'sufficient' END,
    CASE WHEN r.policy <> 'tandem' THEN '[]'::jsonb
         ELSE (SELECT jsonb_agg(jsonb_build_object('level', k, 'score', random() + 0 * r.g))
               FROM generate_series(0, coalesce(r.level, 1)) AS k) END
FROM t, (
    SELECT g, random() AS t, random() AS d, random() AS c, random() AS l,
           now() - random() * interval '{days} days' AS created,
           CASE WHEN s < 0.90 THEN 'succeeded' WHEN s < 0.95 THEN 'failed'
                WHEN s < 0.97 THEN 'cancelled' WHEN s < 0.985 THEN 'queued'
                ELSE 'coordinating' END AS status,
           CASE WHEN p < 0.90 THEN 'tandem' WHEN p < 0.95 THEN 'llm_only'
                WHEN p < 0.98 THEN 'slm_only' ELSE 'fixed_level' END AS policy,
           CASE WHEN s < 0.95 THEN floor(random() * 4)::int END AS level
    FROM (SELECT g, random() AS s, random() AS p FROM generate_series(1, :n) AS g) AS draws
) AS r
"""

# What settlement (shared.rollups) would have written for the settled jobs: each job's three
# calls in its creation hour, its outcome, latency and scores. Each hourly roll-up is built from
# the jobs for their tenants, then summed into the all-tenants rows (tenant NULL); each daily one
# is the sum of its hourly one; the usage totals are usage summed over model, role, domain and
# policy.
LATENCY_MS = "EXTRACT(EPOCH FROM j.finished_at - j.created_at)::float8 * 1000"
HOURLY = {  # table: (its key columns, its sums, the tenants' rows from the rolled-up jobs)
    "usage_hourly": (
        "model, role, domain, policy",
        "calls, prompt_tokens, generated_tokens, flops, cost",
        """
SELECT j.tenant_id, date_trunc('hour', j.created_at, 'UTC'), c.model, c.role, j.domain,
       j.policy, count(*), sum(c.prompt), sum(c.generated), sum(c.flops), sum(j.cost * c.share)
FROM jobs AS j CROSS JOIN (VALUES
    ('llm-32b', 'coordinator', 300, 250, 2 * 32e9 * 250, 0.70),
    ('slm-7b', 'scorer', 500, 1, 2 * 7e9 * 1, 0.05),
    ('slm-7b', 'executor', 600, 400, 2 * 7e9 * 400, 0.25)
) AS c(model, role, prompt, generated, flops, share)
WHERE j.rolled_up
GROUP BY 1, 2, 3, 4, 5, 6
""",
    ),
    "outcome_hourly": (
        "domain, policy, status, truncation_level, termination_reason",
        "jobs, cost",
        """
SELECT j.tenant_id, date_trunc('hour', j.created_at, 'UTC'), j.domain, j.policy, j.status,
       j.truncation_level, j.termination_reason, count(*), sum(j.cost)
FROM jobs AS j WHERE j.rolled_up
GROUP BY 1, 2, 3, 4, 5, 6, 7
""",
    ),
    "latency_hourly": (
        "bucket",
        "jobs",
        f"""
SELECT j.tenant_id, date_trunc('hour', j.created_at, 'UTC'),
       CASE WHEN {LATENCY_MS} < 1 THEN 0
            ELSE 1 + floor(ln({LATENCY_MS}) * 16 / ln(2::float8))::int END,
       count(*)
FROM jobs AS j
WHERE j.rolled_up AND j.status = 'succeeded' AND j.finished_at IS NOT NULL
GROUP BY 1, 2, 3
""",  # noqa: S608 - fixed text
    ),
    "score_hourly": (
        "domain, policy, bucket",
        "checkpoints",
        """
SELECT j.tenant_id, date_trunc('hour', j.created_at, 'UTC'), j.domain, j.policy,
       least(greatest(floor((e.value ->> 'score')::float8 * 10)::int, 0), 9), count(*)
FROM jobs AS j CROSS JOIN LATERAL jsonb_array_elements(j.scores) AS e
WHERE j.rolled_up
GROUP BY 1, 2, 3, 4, 5
""",
    ),
}


def _sums(columns: str) -> str:
    return ", ".join(f"sum({c})" for c in columns.split(", "))


def _rollup_sql() -> list[str]:
    settled = "status IN ('succeeded', 'failed', 'cancelled')"
    statements = [  # rows already right are left alone (a rebuild leaves no dead jobs)
        f"UPDATE jobs SET rolled_up = {settled} WHERE rolled_up IS DISTINCT FROM {settled}"  # noqa: S608
    ]
    for hourly, (keys, sums, rows) in HOURLY.items():
        daily = hourly.replace("_hourly", "_daily")
        day = "date_trunc('day', hour, 'UTC')"
        statements += [
            f"INSERT INTO {hourly} (tenant_id, hour, {keys}, {sums}) {rows}",
            f"INSERT INTO {hourly} (tenant_id, hour, {keys}, {sums}) "  # noqa: S608 - fixed text
            f"SELECT NULL, hour, {keys}, {_sums(sums)} FROM {hourly} GROUP BY hour, {keys}",
            f"INSERT INTO {daily} (tenant_id, day, {keys}, {sums}) "  # noqa: S608 - fixed text
            f"SELECT tenant_id, {day}, {keys}, {_sums(sums)} FROM {hourly} "
            f"GROUP BY tenant_id, {day}, {keys}",
        ]
    usage = HOURLY["usage_hourly"][1]
    for total, period in (("usage_total_hourly", "hour"), ("usage_total_daily", "day")):
        statements.append(
            f"INSERT INTO {total} (tenant_id, {period}, {usage}) "  # noqa: S608 - fixed text
            f"SELECT tenant_id, date_trunc('{period}', hour, 'UTC'), {_sums(usage)} "
            f"FROM usage_hourly GROUP BY tenant_id, date_trunc('{period}', hour, 'UTC')"
        )
    return statements


UNROLLED_INDEXES = ("ix_jobs_unrolled", "ix_jobs_unrolled_tenant")
ROLLUP_TABLES = (
    "usage_hourly",
    "usage_daily",
    "usage_total_hourly",
    "usage_total_daily",
    "outcome_hourly",
    "outcome_daily",
    "latency_hourly",
    "latency_daily",
    "score_hourly",
    "score_daily",
)


def migrate() -> bool:
    """Upgrade the database to head; whether there was anything to do."""
    from alembic import command

    from tandem.commands.db import alembic_config

    def revision() -> str | None:
        with get_engine(DATABASE_URL).connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()

    before = revision()
    command.upgrade(alembic_config(DATABASE_URL), "head")
    return revision() != before


def seed(jobs: int, tenants: int) -> None:
    ensure_database(INFRA, DATABASE, recreate=True)
    migrate()
    engine = get_engine(DATABASE_URL)
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(text("SET TIME ZONE 'UTC'"))
        connection.execute(text(TENANTS_SQL), {"tenants": tenants})
    done = 0
    while done < jobs:
        n = min(CHUNK, jobs - done)
        with engine.begin() as connection:
            connection.execute(text(JOBS_SQL.format(days=DAYS)), {"tenants": tenants, "n": n})
        done += n
        print(f"  seeded {done:,} jobs ({time.perf_counter() - started:.0f} s)", flush=True)
    roll_up()
    print(f"  seeded and vacuumed in {time.perf_counter() - started:.0f} s", flush=True)


def roll_up() -> None:
    """(Re)build every roll-up from the seeded jobs, as settlement would have written them."""
    engine = get_engine(DATABASE_URL)
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(ROLLUP_TABLES)}"))
        for statement in _rollup_sql():
            connection.execute(text(statement))
    # Autovacuum would get there; the benchmark measures the steady state, not its lag. In the
    # steady state the index of jobs not rolled up loses its oldest entries as jobs settle and
    # stays compact; marking every old job at once here leaves it sparse, so it is rebuilt.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in ("jobs", *ROLLUP_TABLES):
            connection.execute(text(f"VACUUM ANALYZE {table}"))
        for index in UNROLLED_INDEXES:
            connection.execute(text(f"REINDEX INDEX {index}"))
    print(f"  rolled up and vacuumed in {time.perf_counter() - started:.0f} s", flush=True)


def rolled_up() -> bool:
    """Whether the seeded jobs' roll-ups are there at the current schema."""
    with get_engine(DATABASE_URL).connect() as connection:
        return bool(
            connection.execute(text("SELECT EXISTS (SELECT 1 FROM outcome_daily)")).scalar()
        )


def seeded_jobs() -> int:
    try:
        with get_engine(DATABASE_URL).connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM jobs")).scalar_one())
    except Exception:
        return 0


def timed(call: Callable[[Session], Any], repeats: int) -> list[float]:
    """Milliseconds per call, each in its own unit of work as a request would run it."""
    with unit_of_work(DATABASE_URL) as session:  # warm the pool and the caches
        call(session)
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        with unit_of_work(DATABASE_URL) as session:
            call(session)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def count_jobs(scope: Scope, span: TimeRange) -> Callable[[Session], Any]:
    """The baseline a report is held against: counting its jobs over the same index range."""
    where = "created_at >= :start AND created_at < :end"
    params: dict[str, Any] = {"start": span.start, "end": span.end}
    if scope.tenant_id is not None:
        where += " AND tenant_id = :tenant"
        params["tenant"] = scope.tenant_id
    query = text(f"SELECT count(*) FROM jobs WHERE {where}")  # noqa: S608 - fixed text
    return lambda session: session.execute(query, params).scalar_one()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument(
        "--reuse", action="store_true", help="Keep an already seeded database of --jobs rows."
    )
    parser.add_argument(
        "--rebuild-rollups", action="store_true", help="With --reuse: rebuild the roll-ups."
    )
    args = parser.parse_args()

    start_postgres(INFRA, find_binaries())
    if args.reuse and seeded_jobs() == args.jobs:
        print(f"reusing {DATABASE} ({args.jobs:,} jobs)")
        # A migration may have rebuilt or emptied roll-ups (and leaves the jobs unvacuumed).
        if migrate() or args.rebuild_rollups or not rolled_up():
            roll_up()
    else:
        print(f"seeding {DATABASE}: {args.jobs:,} jobs, {args.tenants} tenants, {DAYS} days")
        seed(args.jobs, args.tenants)

    now = datetime.now(UTC)
    month = TimeRange(now - timedelta(days=30), now)
    with unit_of_work(DATABASE_URL) as session:
        largest = session.scalars(
            text("SELECT tenant_id FROM jobs GROUP BY tenant_id ORDER BY count(*) DESC LIMIT 1")
        ).one()
        tenant = session.get(Tenant, largest)
        assert tenant is not None
        session.expunge(tenant)
        in_month = count_jobs(Scope(largest), month)(session)
        everyone = count_jobs(Scope(None), month)(session)
        sizes = {
            table: session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608
            for table in ROLLUP_TABLES
        }
    print(f"largest tenant: {in_month:,} jobs in the last 30 days; all tenants: {everyone:,}")
    print("roll-up rows: " + ", ".join(f"{table} {n:,}" for table, n in sizes.items()))

    evaluation = BaselineTable.model_validate(
        {
            "domains": {
                d: {"mean_cost": "0.01", "sample_size": 500} for d in ("math", "code", "general")
            }
        }
    )
    scopes = {"tenant": Scope(largest), "admin": Scope(None)}
    week = TimeRange(now - timedelta(days=7), now)
    reports: list[tuple[str, str, Callable[[Session], Any]]] = []
    for who, scope in scopes.items():
        keys = (
            [GroupKey.TENANT] if who == "admin" else [GroupKey.DAY, GroupKey.MODEL, GroupKey.ROLE]
        )
        reports += [
            (
                f"usage {','.join(k.value for k in keys)}",
                who,
                partial(service.usage_report, scope=scope, span=month, keys=keys, max_rows=10_000),
            ),
            (
                "usage hour,role (7 days)",
                who,
                partial(
                    service.usage_report,
                    scope=scope,
                    span=week,
                    keys=[GroupKey.HOUR, GroupKey.ROLE],
                    max_rows=10_000,
                ),
            ),
            (
                "savings",
                who,
                partial(
                    service.savings_report,
                    scope=scope,
                    span=month,
                    baseline=evaluation,
                    min_shadow_jobs=30,
                ),
            ),
            (
                "truncation",
                who,
                partial(service.truncation_report, scope=scope, span=month, policy=Policy.TANDEM),
            ),
        ]
    reports.append(("budget", "tenant", partial(service.budget_report, tenant=tenant, now=now)))

    select_one = timed(lambda s: s.execute(text("SELECT 1")).scalar_one(), args.repeats)
    counts = {who: timed(count_jobs(scope, month), args.repeats) for who, scope in scopes.items()}
    base_p95 = percentile(select_one, 0.95)
    print(f"\nbaseline SELECT 1: p50 {statistics.median(select_one):.2f} ms, p95 {base_p95:.2f} ms")
    for who, samples in counts.items():
        print(
            f"baseline count of the {who}'s 30-day jobs: p50 {statistics.median(samples):.1f} ms,"
            f" p95 {percentile(samples, 0.95):.1f} ms"
        )
    print(
        f"\n{'report':<28} {'scope':<7} {'p50 ms':>8} {'p95 ms':>8} {'floor ms':>9} "
        f"{'p95/SELECT 1':>13} {'p95/count':>10}"
    )
    for name, who, call in reports:
        samples = timed(call, args.repeats)
        p95 = percentile(samples, 0.95)
        count_p95 = percentile(counts[who], 0.95)
        verdict = "ok" if p95 <= FLOOR_MS else "OVER"
        print(
            f"{name:<28} {who:<7} {statistics.median(samples):>8.1f} {p95:>8.1f} "
            f"{FLOOR_MS:>6.0f} {verdict:<2} {p95 / base_p95:>12.0f}x {p95 / count_p95:>9.1f}x"
        )


if __name__ == "__main__":
    main()
