"""The reports read from roll-ups give the numbers the raw rows give: seeded jobs and calls
(some settled and rolled up, some live or ended without settlement), every figure compared with
the query that reads the raw rows, over ranges cut anywhere (inside an hour, across hours,
across days), for a tenant and for all tenants. Latency percentiles come from a histogram: they
agree within its resolution (shared.rollups.buckets.LATENCY_ERROR)."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Date, cast, func, literal_column, select
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.orm import Session

from services.api.reports import repository as repo
from services.api.reports.params import GroupKey, Scope, TimeRange
from shared.db.models import TERMINAL_STATUSES, Job, JobStatus, ModelCall
from shared.rollups import repository as rollups
from shared.rollups.buckets import LATENCY_ERROR, score_bucket
from shared.tenants import create_tenant

# A year no other test writes to, so the all-tenants figures are this test's alone.
T0 = datetime(2024, 2, 27, 21, 17, tzinfo=UTC)
SPREAD = timedelta(days=3, hours=5)
STATUSES = ["succeeded"] * 6 + ["failed", "cancelled", "queued", "executing", "settling"]
MODELS = [("big", "coordinator"), ("small", "scorer"), ("small", "executor")]


def seed(session: Session, rng: random.Random) -> list[uuid.UUID]:
    tenants = [create_tenant(session, f"raw-{uuid.uuid4().hex[:10]}").id for _ in range(3)]
    for n in range(400):
        created = T0 + SPREAD * rng.random()
        status = rng.choice(STATUSES)
        level = rng.choice([None, 0, 1, 2, 3])
        job = Job(
            id=uuid.uuid4(),
            tenant_id=tenants[n % 3 if rng.random() < 0.7 else 0],
            status=status,
            domain=rng.choice(["math", "code", "general"]),
            policy=rng.choice(["tandem", "tandem", "llm_only", "slm_only"]),
            question="q",
            levels=[0, 100, 500, 1000],
            max_answer_tokens=64,
            prompt_version="test",
            cost=Decimal(rng.randint(0, 10**6)) / Decimal(10**9),
            created_at=created,
            updated_at=created,
            finished_at=created + timedelta(milliseconds=rng.uniform(0.2, 90_000))
            if JobStatus(status).terminal or rng.random() < 0.3
            else None,
            truncation_level=level,
            termination_reason=None if level is None else rng.choice(["sufficient", "max_level"]),
            scores=[{"level": k, "score": rng.random()} for k in range(rng.randint(0, 3))],
        )
        session.add(job)
        for step in range(rng.randint(0, 3)):
            model, role = rng.choice(MODELS)
            session.add(
                ModelCall(
                    job_id=job.id,
                    step=f"s{step}",
                    role=role,
                    model=model,
                    engine="test",
                    prompt_tokens=rng.randint(0, 500),
                    generated_tokens=rng.randint(0, 500),
                    flops_prompt=Decimal(rng.randint(0, 10**12)),
                    flops_generated=Decimal(rng.randint(0, 10**12)),
                    cost=Decimal(rng.randint(0, 10**6)) / Decimal(10**9),
                    created_at=created + timedelta(minutes=rng.uniform(0, 90)),
                )
            )
        session.flush()
        # Most ended jobs are settled (rolled up); a few ended without (an API cancel).
        if JobStatus(status) in TERMINAL_STATUSES and rng.random() < 0.9:
            assert rollups.add_settled_job(session, job)
    return tenants


# --- what the reports computed from the raw rows (the queries the roll-ups replace) ---------


def _jobs_in(stmt: Any, scope: Scope, span: TimeRange) -> Any:
    stmt = stmt.where(Job.created_at >= span.start, Job.created_at < span.end)
    if scope.tenant_id is not None:
        stmt = stmt.where(Job.tenant_id == scope.tenant_id)
    return stmt


def raw_counts(session: Session, scope: Scope, span: TimeRange) -> dict[str, int]:
    stmt = select(Job.status, func.count()).group_by(Job.status)
    counted = {s.value: 0 for s in JobStatus}
    counted.update({s: int(n) for s, n in session.execute(_jobs_in(stmt, scope, span))})
    return counted


def raw_latency(session: Session, scope: Scope, span: TimeRange) -> list[float | None]:
    ps = func.percentile_cont(array([literal_column(str(p)) for p in repo.PERCENTILES]))
    stmt = select(ps.within_group(Job.finished_at - Job.created_at)).where(
        Job.status == JobStatus.SUCCEEDED.value
    )
    found = session.execute(_jobs_in(stmt, scope, span)).scalar_one()
    return [None] * 3 if found is None else [d.total_seconds() * 1000 for d in found]


def raw_truncation(session: Session, scope: Scope, span: TimeRange, policy: str) -> set[Any]:
    stmt = (
        select(Job.domain, Job.truncation_level, Job.termination_reason, func.count())
        .where(Job.policy == policy, Job.truncation_level.is_not(None))
        .group_by(Job.domain, Job.truncation_level, Job.termination_reason)
    )
    return {tuple(row) for row in session.execute(_jobs_in(stmt, scope, span))}


def raw_succeeded_cost(session: Session, scope: Scope, span: TimeRange) -> set[Any]:
    stmt = (
        select(Job.domain, Job.policy, func.count(), func.sum(Job.cost))
        .where(Job.status == "succeeded", Job.policy.in_(["tandem", "llm_only"]))
        .group_by(Job.domain, Job.policy)
    )
    return {tuple(row) for row in session.execute(_jobs_in(stmt, scope, span))}


def _hours(span: TimeRange) -> tuple[datetime, datetime]:
    return span.start.replace(minute=0, second=0, microsecond=0), span.end


def raw_usage(
    session: Session, scope: Scope, span: TimeRange, keys: list[GroupKey]
) -> list[tuple[Any, ...]]:
    """Usage of the settled (rolled-up) jobs' calls, resolved to the hour."""
    hour = func.date_trunc("hour", ModelCall.created_at, "UTC")
    columns = {
        GroupKey.DAY: cast(func.timezone("UTC", hour), Date),
        GroupKey.HOUR: hour,
        GroupKey.MODEL: ModelCall.model,
        GroupKey.ROLE: ModelCall.role,
        GroupKey.DOMAIN: Job.domain,
        GroupKey.POLICY: Job.policy,
        GroupKey.TENANT: Job.tenant_id,
    }
    groups = [columns[k] for k in keys]
    start, end = _hours(span)
    stmt = (
        select(
            *groups,
            func.count(),
            func.sum(ModelCall.prompt_tokens),
            func.sum(ModelCall.generated_tokens),
            func.sum(ModelCall.flops_prompt + ModelCall.flops_generated),
            func.sum(ModelCall.cost),
        )
        .join(Job, Job.id == ModelCall.job_id)
        .where(Job.rolled_up, hour >= start, hour < end, Job.created_at >= T0 - timedelta(days=1))
        .group_by(*groups)
        .order_by(*groups)
    )
    if scope.tenant_id is not None:
        stmt = stmt.where(Job.tenant_id == scope.tenant_id)
    return [tuple(row) for row in session.execute(stmt)]


def raw_scores(session: Session, scope: Scope, span: TimeRange, policy: str) -> set[Any]:
    entry = func.jsonb_array_elements(Job.scores).table_valued("value").lateral("e")
    tenth = score_bucket(entry.c.value.op("->>")("score"))
    hour = func.date_trunc("hour", Job.created_at, "UTC")
    start, end = _hours(span)
    stmt = (
        select(Job.domain, tenth, func.count())
        .select_from(Job)
        .join(entry, literal_column("true"))
        .where(Job.rolled_up, Job.policy == policy, hour >= start, hour < end)
        .group_by(Job.domain, tenth)
    )
    if scope.tenant_id is not None:
        stmt = stmt.where(Job.tenant_id == scope.tenant_id)
    return {tuple(row) for row in session.execute(stmt)}


# --- the comparison --------------------------------------------------------------------------

SPANS = [
    TimeRange(T0, T0 + SPREAD),  # everything, cut mid-hour at both ends
    TimeRange(
        T0 + timedelta(hours=5, minutes=3), T0 + timedelta(hours=5, minutes=41)
    ),  # in an hour
    TimeRange(T0 + timedelta(minutes=43), T0 + timedelta(hours=7, minutes=12)),  # across hours
    TimeRange(datetime(2024, 2, 28, tzinfo=UTC), datetime(2024, 3, 1, 23, tzinfo=UTC)),  # days
    TimeRange(datetime(2024, 2, 28, 6, 30, tzinfo=UTC), datetime(2024, 3, 2, tzinfo=UTC)),
]


@pytest.mark.parametrize("seed_value", [7, 2024])
def test_every_figure_matches_the_raw_rows(db_session: Session, seed_value: int) -> None:
    tenants = seed(db_session, random.Random(seed_value))
    scopes = [Scope(tenants[0]), Scope(tenants[1]), Scope(None)]
    for span in SPANS:
        for scope in scopes:
            where = (span, scope)
            counts = repo.job_counts(db_session, scope, span)
            assert counts.by_status == raw_counts(db_session, scope, span), where
            for got, want in zip(
                counts.latency_ms, raw_latency(db_session, scope, span), strict=True
            ):
                if want is None:
                    assert got is None, where
                else:
                    # Below 1 ms the histogram's resolution is absolute (0.5 ms).
                    assert got == pytest.approx(want, rel=LATENCY_ERROR, abs=0.5), where
            for policy in ("tandem", "llm_only"):
                got_levels = {
                    (r.domain, r.level, r.reason, r.jobs)
                    for r in repo.truncation_outcomes(db_session, scope, span, policy)
                }
                assert got_levels == raw_truncation(db_session, scope, span, policy), where
                got_scores = set(repo.score_buckets(db_session, scope, span, policy))
                assert got_scores == raw_scores(db_session, scope, span, policy), where
            got_cost = {
                (r.domain, r.policy, r.jobs, r.cost)
                for r in repo.succeeded_cost(db_session, scope, span, ["tandem", "llm_only"])
            }
            assert got_cost == raw_succeeded_cost(db_session, scope, span), where
            for keys in (
                [GroupKey.DAY, GroupKey.MODEL, GroupKey.ROLE],
                [GroupKey.HOUR, GroupKey.ROLE],
                [GroupKey.DOMAIN, GroupKey.POLICY],
                [GroupKey.TENANT],
                [GroupKey.DAY],
                [GroupKey.HOUR, GroupKey.TENANT],
            ):
                if GroupKey.TENANT in keys and scope.tenant_id is not None:
                    continue
                got_usage = [
                    (
                        *r.keys.values(),
                        r.calls,
                        r.prompt_tokens,
                        r.generated_tokens,
                        r.flops,
                        r.cost,
                    )
                    for r in repo.usage_rows(db_session, scope, span, keys, 10_000)
                ]
                assert got_usage == raw_usage(db_session, scope, span, keys), (where, keys)


def test_some_seeded_jobs_are_read_raw(db_session: Session) -> None:
    """The comparison above covers both paths: rolled-up jobs and jobs read raw."""
    seed(db_session, random.Random(7))
    rolled = defaultdict(int)
    for flag, n in db_session.execute(
        select(Job.rolled_up, func.count())
        .where(Job.created_at >= T0, Job.created_at < T0 + SPREAD)
        .group_by(Job.rolled_up)
    ):
        rolled[flag] = n
    assert rolled[True] > 100 and rolled[False] > 50
