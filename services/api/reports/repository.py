"""All SQL of the reports. Usage and classifier scores come from the hourly roll-ups; job
counts, latencies, truncation outcomes and costs from the jobs table through its
(tenant_id, created_at) and (created_at) indexes. Every index read here carries the columns
the query needs, so a range is an index-only scan."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Date, Select, cast, func, literal_column, select
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from services.api.reports.params import GroupKey, Scope, TimeRange
from shared.db.models import Job, JobStatus, ScoreHourly, Tenant, UsageHourly

# Any select: the range filters only add WHERE clauses, whatever the columns.
S = TypeVar("S", bound=Select[*tuple[Any, ...]])

PERCENTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class UsageRow:
    keys: dict[GroupKey, Any]
    calls: int
    prompt_tokens: int
    generated_tokens: int
    flops: Decimal
    cost: Decimal


def _floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _usage_key(key: GroupKey) -> ColumnElement[Any]:
    match key:
        case GroupKey.DAY:
            return cast(func.timezone("UTC", UsageHourly.hour), Date).label(key.value)
        case GroupKey.HOUR:
            return UsageHourly.hour.label(key.value)
        case GroupKey.TENANT:
            return UsageHourly.tenant_id.label(key.value)
        case _:
            return getattr(UsageHourly, key.value).label(key.value)


def _usage_in(stmt: S, scope: Scope, span: TimeRange) -> S:
    # A roll-up row covers its whole hour: the range is resolved to the hour it starts in.
    stmt = stmt.where(UsageHourly.hour >= _floor_hour(span.start), UsageHourly.hour < span.end)
    if scope.tenant_id is not None:
        stmt = stmt.where(UsageHourly.tenant_id == scope.tenant_id)
    return stmt


def usage_rows(
    session: Session, scope: Scope, span: TimeRange, keys: Sequence[GroupKey], limit: int
) -> list[UsageRow]:
    """Sums per group, ordered by the keys; at most ``limit`` rows (the caller asks one more
    than it accepts, to tell a complete answer from a cut one)."""
    columns = [_usage_key(k) for k in keys]
    stmt = (
        select(
            *columns,
            func.sum(UsageHourly.calls),
            func.sum(UsageHourly.prompt_tokens),
            func.sum(UsageHourly.generated_tokens),
            func.sum(UsageHourly.flops),
            func.sum(UsageHourly.cost),
        )
        .group_by(*columns)
        .order_by(*columns)
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
        for row in session.execute(_usage_in(stmt, scope, span))
    ]


def daily_cost(
    session: Session, tenant_id: uuid.UUID, start: datetime, end: datetime
) -> dict[date, Decimal]:
    day = cast(func.timezone("UTC", UsageHourly.hour), Date)
    stmt = (
        select(day, func.sum(UsageHourly.cost))
        .where(UsageHourly.tenant_id == tenant_id)
        .where(UsageHourly.hour >= _floor_hour(start), UsageHourly.hour < end)
        .group_by(day)
    )
    return {d: Decimal(c) for d, c in session.execute(stmt)}


def tenant_names(session: Session, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    return dict(session.execute(select(Tenant.id, Tenant.name).where(Tenant.id.in_(ids))).all())


def _jobs_in(stmt: S, scope: Scope, span: TimeRange) -> S:
    stmt = stmt.where(Job.created_at >= span.start, Job.created_at < span.end)
    if scope.tenant_id is not None:
        stmt = stmt.where(Job.tenant_id == scope.tenant_id)
    return stmt


@dataclass(frozen=True)
class JobCounts:
    by_status: dict[str, int]
    latency_ms: tuple[float | None, ...]  # PERCENTILES of succeeded jobs, submission to finish


def job_counts(session: Session, scope: Scope, span: TimeRange) -> JobCounts:
    """Jobs per status and the latency percentiles of the succeeded ones, in one index-only
    scan (FILTERed aggregates: no per-status groups to sort)."""
    succeeded = Job.status == JobStatus.SUCCEEDED.value
    percentiles = func.percentile_cont(array([literal_column(str(p)) for p in PERCENTILES]))
    stmt = select(
        *(func.count().filter(Job.status == s.value) for s in JobStatus),
        percentiles.within_group(Job.finished_at - Job.created_at).filter(succeeded),
    )
    *counts, durations = session.execute(_jobs_in(stmt, scope, span)).one()
    latency_ms = tuple(
        None if d is None else d.total_seconds() * 1000
        for d in (durations or [None] * len(PERCENTILES))
    )
    return JobCounts({s.value: int(n) for s, n in zip(JobStatus, counts, strict=True)}, latency_ms)


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
    stmt = (
        select(Job.domain, Job.truncation_level, Job.termination_reason, func.count())
        .where(Job.policy == policy, Job.truncation_level.is_not(None))
        .group_by(Job.domain, Job.truncation_level, Job.termination_reason)
    )
    return [
        OutcomeRow(domain, int(level or 0), reason, int(jobs))
        for domain, level, reason, jobs in session.execute(_jobs_in(stmt, scope, span))
    ]


def score_buckets(
    session: Session, scope: Scope, span: TimeRange, policy: str
) -> list[tuple[str, int, int]]:
    """(domain, bucket, checkpoints) from the score roll-up of the jobs created in the range
    (to the hour) and settled."""
    total = func.sum(ScoreHourly.checkpoints)
    stmt = (
        select(ScoreHourly.domain, ScoreHourly.bucket, total)
        .where(ScoreHourly.policy == policy)
        .where(ScoreHourly.hour >= _floor_hour(span.start), ScoreHourly.hour < span.end)
        .group_by(ScoreHourly.domain, ScoreHourly.bucket)
    )
    if scope.tenant_id is not None:
        stmt = stmt.where(ScoreHourly.tenant_id == scope.tenant_id)
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
    stmt = (
        select(Job.domain, Job.policy, func.count(), func.sum(Job.cost))
        .where(Job.status == JobStatus.SUCCEEDED.value, Job.policy.in_(list(policies)))
        .group_by(Job.domain, Job.policy)
    )
    return [
        CostRow(domain, policy, int(jobs), Decimal(cost))
        for domain, policy, jobs, cost in session.execute(_jobs_in(stmt, scope, span))
    ]
