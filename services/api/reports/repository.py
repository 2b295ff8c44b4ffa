"""All SQL of the reports, read from the roll-ups (shared.rollups) sized for the view: daily
rows for whole days, hourly rows for the hours around them, and for the job figures, which are
exact to the instant, the jobs of the partial hours at either end plus the few jobs the
roll-ups do not hold yet (``NOT rolled_up``: live, or ended without a settlement). A view
grouped by nothing but day, hour or tenant reads the usage totals, one row per tenant and
period. A tenant reads its own rows; the operator reads the all-tenants rows (tenant NULL), or
every tenant's rows when the view is grouped by tenant. No query sorts jobs, and none reads a
rolled-up job outside the partial hours."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Date,
    Integer,
    Select,
    String,
    case,
    cast,
    func,
    literal,
    null,
    select,
    union_all,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from services.api.reports import periods
from services.api.reports.params import GroupKey, Scope, TimeRange
from shared.db.base import Base
from shared.db.models import (
    OUTCOME_KEYS,
    USAGE_METRICS,
    ApiKey,
    Job,
    JobStatus,
    KeyUsageDaily,
    KeyUsageHourly,
    LatencyDaily,
    LatencyHourly,
    OutcomeDaily,
    OutcomeHourly,
    ScoreDaily,
    ScoreHourly,
    Tenant,
    UsageDaily,
    UsageHourly,
    UsageTotalDaily,
    UsageTotalHourly,
)
from shared.rollups.buckets import latency_bucket, percentiles

PERCENTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class Level:
    """One roll-up table and the column of its period."""

    table: type[Base]
    period: str

    def column(self, name: str) -> ColumnElement[Any]:
        return self.table.__table__.c[name]


USAGE = (Level(UsageDaily, "day"), Level(UsageHourly, "hour"))
USAGE_TOTALS = (Level(UsageTotalDaily, "day"), Level(UsageTotalHourly, "hour"))
TOTAL_KEYS = frozenset({GroupKey.DAY, GroupKey.HOUR, GroupKey.TENANT})  # USAGE_TOTALS hold them
KEY_USAGE = (Level(KeyUsageDaily, "day"), Level(KeyUsageHourly, "hour"))  # tenants' rows only
OUTCOMES = (Level(OutcomeDaily, "day"), Level(OutcomeHourly, "hour"))
LATENCY = (Level(LatencyDaily, "day"), Level(LatencyHourly, "hour"))
SCORES = (Level(ScoreDaily, "day"), Level(ScoreHourly, "hour"))


def _rollup_branches(
    levels: tuple[Level, Level],
    cut: periods.Cut,
    scope: Scope,
    columns: Any,
    *,
    by_tenant: bool = False,
) -> list[Select[Any]]:
    """One SELECT per span of the cut, each a range of one roll-up's key index.

    ``columns(level)`` gives the branch's columns (the same labels for every level)."""
    branches = []
    for level, spans in zip(levels, (cut.days, cut.hours), strict=True):
        tenant = level.column("tenant_id")
        if scope.tenant_id is not None:
            who = tenant == scope.tenant_id
        else:
            who = tenant.is_not(None) if by_tenant else tenant.is_(None)
        period = level.column(level.period)
        for start, end in spans:
            branches.append(select(*columns(level)).where(who, period >= start, period < end))
    return branches


def _jobs_branches(cut: periods.Cut, scope: Scope, columns: Sequence[Any]) -> list[Select[Any]]:
    """The jobs the roll-ups of ``cut`` do not hold: every job of the partial hours, and the
    jobs not rolled up in the whole hours; never a shadow run (the roll-ups hold none either:
    it is the operator's measurement, read by :func:`shadow_pairs` alone)."""
    ranges: list[tuple[datetime, datetime, ColumnElement[bool] | None]] = [
        (start, end, None) for start, end in cut.raw
    ]
    start, end = cut.whole
    if start < end:
        ranges.append((start, end, ~Job.rolled_up))
    branches = []
    for start, end, extra in ranges:
        stmt = select(*columns).where(
            Job.created_at >= start, Job.created_at < end, Job.shadow_of.is_(None)
        )
        if extra is not None:
            stmt = stmt.where(extra)
        if scope.tenant_id is not None:
            stmt = stmt.where(Job.tenant_id == scope.tenant_id)
        branches.append(stmt)
    return branches


def _union(branches: list[Select[Any]]) -> Any:
    return union_all(*branches).subquery("rows")


# --- usage ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class UsageRow:
    keys: dict[GroupKey, Any]
    calls: int
    prompt_tokens: int
    generated_tokens: int
    flops: Decimal
    cost: Decimal


def _usage_key(level: Level, key: GroupKey) -> ColumnElement[Any]:
    match key:
        case GroupKey.DAY:
            return cast(func.timezone("UTC", level.column(level.period)), Date).label(key.value)
        case GroupKey.HOUR:
            return level.column("hour").label(key.value)
        case GroupKey.TENANT:
            return level.column("tenant_id").label(key.value)
        case GroupKey.KEY:
            return level.column("api_key_id").label(key.value)
        case _:
            return level.column(key.value).label(key.value)


def usage_rows(
    session: Session, scope: Scope, span: TimeRange, keys: Sequence[GroupKey], limit: int
) -> list[UsageRow]:
    """Sums per group, resolved to the hour, ordered by the keys; at most ``limit`` rows (the
    caller asks one more than it accepts, to tell a complete answer from a cut one)."""
    cut = (periods.hours_only if GroupKey.HOUR in keys else periods.by_hour)(span.start, span.end)
    by_key = GroupKey.KEY in keys
    branches = _rollup_branches(
        KEY_USAGE if by_key else USAGE_TOTALS if TOTAL_KEYS.issuperset(keys) else USAGE,
        cut,
        scope,
        lambda level: [
            *(_usage_key(level, k) for k in keys),
            *(level.column(m) for m in USAGE_METRICS),
        ],
        by_tenant=by_key or GroupKey.TENANT in keys,
    )
    if not branches:
        return []
    rows = _union(branches)
    groups = [rows.c[k.value] for k in keys]
    stmt = (
        select(*groups, *(func.sum(rows.c[m]) for m in USAGE_METRICS))
        .group_by(*groups)
        .order_by(*groups)
        .limit(limit)
    )
    n = len(keys)
    return [
        UsageRow(
            keys=dict(zip(keys, row[:n], strict=True)),
            calls=int(row[n]),
            prompt_tokens=int(row[n + 1]),
            generated_tokens=int(row[n + 2]),
            flops=Decimal(row[n + 3]),
            cost=Decimal(row[n + 4]),
        )
        for row in session.execute(stmt)
    ]


def daily_cost(
    session: Session, tenant_id: uuid.UUID, start: datetime, end: datetime
) -> dict[date, Decimal]:
    found = usage_rows(session, Scope(tenant_id), TimeRange(start, end), [GroupKey.DAY], 10_000)
    return {row.keys[GroupKey.DAY]: row.cost for row in found}


def key_labels(session: Session, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, tuple[str, str]]:
    """Each key's visible prefix and name."""
    if not ids:
        return {}
    rows = session.execute(select(ApiKey.id, ApiKey.prefix, ApiKey.name).where(ApiKey.id.in_(ids)))
    return {key_id: (prefix, name) for key_id, prefix, name in rows}


def tenant_names(session: Session, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    return dict(session.execute(select(Tenant.id, Tenant.name).where(Tenant.id.in_(ids))).all())


# --- jobs (exact to the instant) -------------------------------------------------------------


def _outcomes(scope: Scope, span: TimeRange) -> Any:
    """Jobs created in the range as (domain, policy, status, truncation_level,
    termination_reason, jobs, cost) rows, to be summed."""
    cut = periods.exact(span.start, span.end)
    branches = _rollup_branches(
        OUTCOMES,
        cut,
        scope,
        lambda level: [
            *(level.column(k) for k in OUTCOME_KEYS),
            level.column("jobs"),
            level.column("cost"),
        ],
    )
    branches += _jobs_branches(
        cut,
        scope,
        [*(Job.__table__.c[k] for k in OUTCOME_KEYS), literal(1).label("jobs"), Job.cost],
    )
    return _union(branches)


@dataclass(frozen=True)
class JobCounts:
    by_status: dict[str, int]
    latency_ms: tuple[float | None, ...]  # PERCENTILES of succeeded jobs, submission to finish


def job_counts(session: Session, scope: Scope, span: TimeRange) -> JobCounts:
    """Jobs per status, and the latency percentiles of the succeeded ones from the latency
    histogram (within shared.rollups.buckets.LATENCY_ERROR of percentile_cont), in one
    statement: outcome rows carry a status, latency rows a bucket, and a raw job both (its
    bucket only if it succeeded); each side is summed over the groups that carry it."""
    cut = periods.exact(span.start, span.end)
    no_bucket = cast(null(), Integer).label("bucket")
    no_status = cast(null(), String).label("status")
    branches = _rollup_branches(
        OUTCOMES,
        cut,
        scope,
        lambda level: [level.column("status"), no_bucket, level.column("jobs")],
    )
    branches += _rollup_branches(
        LATENCY,
        cut,
        scope,
        lambda level: [no_status, level.column("bucket"), level.column("jobs")],
    )
    jobs = Job.__table__.c
    succeeded = (jobs.status == JobStatus.SUCCEEDED.value) & jobs.finished_at.is_not(None)
    bucket = cast(case((succeeded, latency_bucket(jobs.finished_at, jobs.created_at))), Integer)
    branches += _jobs_branches(
        cut, scope, [jobs.status, bucket.label("bucket"), literal(1).label("jobs")]
    )
    rows = _union(branches)
    stmt = select(rows.c.status, rows.c.bucket, func.sum(rows.c.jobs)).group_by(
        rows.c.status, rows.c.bucket
    )
    by_status = {s.value: 0 for s in JobStatus}
    histogram: dict[int, int] = defaultdict(int)
    for status, bucket_, n in session.execute(stmt):
        if status is not None:
            by_status[status] += int(n)
        if bucket_ is not None:
            histogram[int(bucket_)] += int(n)
    return JobCounts(by_status, percentiles(histogram, PERCENTILES))


@dataclass(frozen=True)
class OutcomeRow:
    domain: str
    level: int
    reason: str | None
    jobs: int


def truncation_outcomes(
    session: Session, scope: Scope, span: TimeRange, policy: str
) -> list[OutcomeRow]:
    """Jobs that reached a truncation decision, per domain, level and termination reason."""
    rows = _outcomes(scope, span)
    stmt = (
        select(
            rows.c.domain, rows.c.truncation_level, rows.c.termination_reason, func.sum(rows.c.jobs)
        )
        .where(rows.c.policy == policy, rows.c.truncation_level.is_not(None))
        .group_by(rows.c.domain, rows.c.truncation_level, rows.c.termination_reason)
    )
    return [
        OutcomeRow(domain, int(level or 0), reason, int(jobs))
        for domain, level, reason, jobs in session.execute(stmt)
    ]


def score_buckets(
    session: Session, scope: Scope, span: TimeRange, policy: str
) -> list[tuple[str, int, int]]:
    """(domain, bucket, checkpoints) of the settled jobs created in the range (to the hour)."""
    cut = periods.by_hour(span.start, span.end)
    branches = _rollup_branches(
        SCORES,
        cut,
        scope,
        lambda level: [
            level.column("domain"),
            level.column("policy"),
            level.column("bucket"),
            level.column("checkpoints"),
        ],
    )
    if not branches:
        return []
    rows = _union(branches)
    stmt = (
        select(rows.c.domain, rows.c.bucket, func.sum(rows.c.checkpoints))
        .where(rows.c.policy == policy)
        .group_by(rows.c.domain, rows.c.bucket)
    )
    return [(d, int(b), int(n)) for d, b, n in session.execute(stmt)]


@dataclass(frozen=True)
class CostRow:
    domain: str
    policy: str
    jobs: int
    cost: Decimal


def succeeded_cost(
    session: Session, scope: Scope, span: TimeRange, policies: Sequence[str]
) -> list[CostRow]:
    """Count and summed cost of succeeded jobs, per domain and policy."""
    rows = _outcomes(scope, span)
    stmt = (
        select(rows.c.domain, rows.c.policy, func.sum(rows.c.jobs), func.sum(rows.c.cost))
        .where(rows.c.status == JobStatus.SUCCEEDED.value, rows.c.policy.in_(list(policies)))
        .group_by(rows.c.domain, rows.c.policy)
    )
    return [
        CostRow(domain, policy, int(jobs), Decimal(cost))
        for domain, policy, jobs, cost in session.execute(stmt)
    ]


@dataclass(frozen=True)
class ShadowPairs:
    """Succeeded tandem jobs of one domain measured by a succeeded shadow run, and what each
    side cost."""

    domain: str
    pairs: int
    tandem_cost: Decimal
    shadow_cost: Decimal


def shadow_pairs(session: Session, scope: Scope, span: TimeRange) -> list[ShadowPairs]:
    """Per domain, the shadow runs made in the range (each right after its job's settlement,
    so only succeeded tandem jobs have one) with what their jobs cost; a tenant's scope is its
    jobs' shadow runs. An index-only scan of a share of the traffic (``ix_jobs_shadows`` or
    ``ix_jobs_shadows_tenant``): the job's tenant and cost are copied onto its shadow run."""
    stmt = (
        select(Job.domain, func.count(), func.sum(Job.shadow_of_cost), func.sum(Job.cost))
        .where(
            Job.shadow_of.is_not(None),
            Job.created_at >= span.start,
            Job.created_at < span.end,
            Job.status == JobStatus.SUCCEEDED.value,
        )
        .group_by(Job.domain)
    )
    if scope.tenant_id is not None:
        stmt = stmt.where(Job.shadow_of_tenant_id == scope.tenant_id)
    return [
        ShadowPairs(domain, int(pairs), Decimal(tandem or 0), Decimal(shadow_cost))
        for domain, pairs, tandem, shadow_cost in session.execute(stmt)
    ]
