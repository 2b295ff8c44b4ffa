"""The reports, assembled from :mod:`services.api.reports.repository`'s figures. Plain
functions of a session, so tests and the benchmark call them directly; the ``read_*`` functions
own the unit of work each route needs (routes hold no sessions)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from services.api.reports import repository as repo
from services.api.reports.baseline import BaselineTable
from services.api.reports.params import GroupKey, Scope, TimeRange, month_start
from services.api.reports.schemas import (
    BudgetReport,
    DailyCost,
    DomainSavings,
    DomainTruncation,
    EstimateMethod,
    JobsSummary,
    Latency,
    SavingsEstimate,
    SavingsReport,
    ScoreHistogram,
    ShadowShare,
    TruncationReport,
    UsageReport,
    UsageTotals,
    UsageValue,
)
from shared import tenants
from shared.budgets import repository as budgets
from shared.budgets.periods import period_key
from shared.db.models import BudgetPeriod, JobStatus, Policy, Tenant
from shared.db.session import unit_of_work
from shared.errors import NotFoundError, ValidationFailed
from shared.money import QUANTUM
from shared.rollups.buckets import SCORE_BUCKETS

SCORE_EDGES = [round(k / SCORE_BUCKETS, 1) for k in range(SCORE_BUCKETS + 1)]


def money(amount: Decimal) -> str:
    """A plain decimal string at the schema's scale without trailing zeros ("0.00025935")."""
    return format(amount.quantize(QUANTUM, rounding=ROUND_HALF_EVEN).normalize(), "f")


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _key_value(key: GroupKey, value: Any) -> UsageValue:
    if value is None:  # key: jobs no API key submitted
        return None
    return _utc(value) if key is GroupKey.HOUR else str(value)  # day: ISO date; tenant: its id


def named_tenant(session: Session, tenant_id: uuid.UUID) -> Tenant:
    """The tenant an admin's ``tenant_id`` names; unknown is a 404, not an empty report."""
    try:
        return tenants.get_tenant(session, tenant_id)
    except NotFoundError:
        raise NotFoundError(f"tenant {tenant_id} not found", field="tenant_id") from None


def usage_report(
    session: Session, scope: Scope, span: TimeRange, keys: Sequence[GroupKey], max_rows: int
) -> UsageReport:
    found = repo.usage_rows(session, scope, span, keys, max_rows + 1)
    if len(found) > max_rows:
        raise ValidationFailed(
            f"the report has more than {max_rows} rows: narrow the range or group by fewer keys",
            field="group_by",
        )
    names = (
        repo.tenant_names(session, sorted({r.keys[GroupKey.TENANT] for r in found}))
        if GroupKey.TENANT in keys
        else {}
    )
    labels = (
        repo.key_labels(session, sorted({r.keys[GroupKey.KEY] for r in found} - {None}))
        if GroupKey.KEY in keys
        else {}
    )
    rows: list[dict[str, UsageValue]] = []
    for found_row in found:
        row: dict[str, UsageValue] = {}
        for key in keys:
            value = found_row.keys[key]
            row[key.value] = _key_value(key, value)
            if key is GroupKey.TENANT:
                row["tenant_name"] = names.get(value)
            if key is GroupKey.KEY:
                row["key_prefix"], row["key_name"] = labels.get(value, (None, None))
        row.update(
            calls=found_row.calls,
            prompt_tokens=found_row.prompt_tokens,
            generated_tokens=found_row.generated_tokens,
            flops=str(int(found_row.flops)),
            cost=money(found_row.cost),
        )
        rows.append(row)
    totals = UsageTotals(
        calls=sum(r.calls for r in found),
        prompt_tokens=sum(r.prompt_tokens for r in found),
        generated_tokens=sum(r.generated_tokens for r in found),
        flops=str(int(sum((r.flops for r in found), Decimal(0)))),
        cost=money(sum((r.cost for r in found), Decimal(0))),
    )
    counts = repo.job_counts(session, scope, span)
    p50, p95, p99 = counts.latency_ms
    return UsageReport(
        start=span.start,
        end=span.end,
        group_by=list(keys),
        rows=rows,
        totals=totals,
        jobs=JobsSummary(
            total=sum(counts.by_status.values()),
            by_status={s.value: counts.by_status.get(s.value, 0) for s in JobStatus},
            latency_ms=Latency(p50=p50, p95=p95, p99=p99),
        ),
    )


def _sizes(estimates: dict[str, tuple[Decimal, int]]) -> str:
    return ", ".join(f"{d} {n}" for d, (_, n) in sorted(estimates.items()))


def _paired(tandem: repo.CostRow, pairs: repo.ShadowPairs) -> Decimal:
    """The coordinator-alone cost of all of a domain's jobs from its pairs: the jobs' cost
    times what the shadow runs cost per dollar of the same jobs (a ratio over the same
    questions, so the long ones weigh on both sides); per job when the pairs cost nothing."""
    if pairs.tandem_cost > 0:
        return tandem.cost * pairs.shadow_cost / pairs.tandem_cost
    return pairs.shadow_cost / pairs.pairs * tandem.jobs


def savings_report(
    session: Session,
    scope: Scope,
    span: TimeRange,
    baseline: BaselineTable | None,
    min_shadow_jobs: int,
) -> SavingsReport:
    """Tandem's cost against the coordinator alone on the same jobs.

    One method for the whole figure, never a silent mix, best first: ``shadow`` (the shadow
    runs paired with their jobs, services.accounting.shadow) when every domain has at least
    ``min_shadow_jobs`` pairs; else ``llm_only_jobs`` (the mean cost of llm_only jobs the
    tenants submitted in the same scope and range) when every domain has that many; else
    ``offline_table`` (the baseline table) when it covers every domain; else ``none``.
    """
    tandem: dict[str, repo.CostRow] = {}
    llm_only: dict[str, repo.CostRow] = {}
    for row in repo.succeeded_cost(
        session, scope, span, [Policy.TANDEM.value, Policy.LLM_ONLY.value]
    ):
        (tandem if row.policy == Policy.TANDEM.value else llm_only)[row.domain] = row
    pairs = {row.domain: row for row in repo.shadow_pairs(session, scope, span)}
    jobs = sum(r.jobs for r in tandem.values())
    tandem_cost = sum((r.cost for r in tandem.values()), Decimal(0))
    domains = sorted(tandem)

    def enough(found: dict[str, Any], attribute: str) -> bool:
        return all(d in found and getattr(found[d], attribute) >= min_shadow_jobs for d in domains)

    # domain -> (coordinator-alone cost of the domain's tandem jobs, runs measured)
    estimates: dict[str, tuple[Decimal, int]] = {}
    method: EstimateMethod
    if not domains:
        method, detail = "none", "no succeeded tandem jobs in the range"
    elif enough(pairs, "pairs"):
        estimates = {d: (_paired(tandem[d], pairs[d]), pairs[d].pairs) for d in domains}
        method = "shadow"
        detail = (
            "shadow runs: the same questions answered by the coordinator alone on the "
            "operator's account; the jobs' cost times the shadow runs' cost over their jobs' "
            f"({_sizes(estimates)} pairs)"
        )
    elif enough(llm_only, "jobs"):
        estimates = {
            d: (llm_only[d].cost / llm_only[d].jobs * tandem[d].jobs, llm_only[d].jobs)
            for d in domains
        }
        method = "llm_only_jobs"
        detail = (
            "llm_only jobs: mean measured cost of succeeded llm_only jobs (the coordinator "
            "alone) of the same tenant scope, domain and range, times the tandem job count "
            f"({_sizes(estimates)})"
        )
    elif baseline is not None and all(d in baseline.domains for d in domains):
        estimates = {
            d: (
                baseline.domains[d].mean_cost * tandem[d].jobs,
                baseline.domains[d].sample_size,
            )
            for d in domains
        }
        source = f" ({baseline.source})" if baseline.source else ""
        method = "offline_table"
        detail = (
            f"offline table: mean coordinator-alone cost per job from the evaluation "
            f"table{source}, times the tandem job count ({_sizes(estimates)})"
        )
    else:
        missing = [
            f"{d} ({pairs[d].pairs if d in pairs else 0} shadow runs and "
            f"{llm_only[d].jobs if d in llm_only else 0} llm_only jobs, fewer than "
            f"{min_shadow_jobs}; no offline table entry)"
            for d in domains
            if baseline is None or d not in baseline.domains
        ]
        method = "none"
        detail = "no coordinator-alone measurement for: " + "; ".join(missing)

    by_domain: dict[str, DomainSavings] = {}
    counterfactual: Decimal | None = Decimal(0) if estimates else None
    for d in domains:
        estimate = estimates[d][0] if d in estimates else None
        if counterfactual is not None and estimate is not None:
            counterfactual += estimate
        by_domain[d] = DomainSavings(
            jobs=tandem[d].jobs,
            tandem_cost=money(tandem[d].cost),
            counterfactual_cost=None if estimate is None else money(estimate),
            sample_size=estimates[d][1] if d in estimates else 0,
            shadow_runs=pairs[d].pairs if d in pairs else 0,
        )
    share = (
        round(float(tandem_cost / counterfactual), 6)
        if counterfactual is not None and counterfactual > 0
        else None
    )
    runs = sum(p.pairs for p in pairs.values())
    return SavingsReport(
        start=span.start,
        end=span.end,
        jobs=jobs,
        tandem_cost=money(tandem_cost),
        counterfactual_cost=None if counterfactual is None else money(counterfactual),
        savings=None if counterfactual is None else money(counterfactual - tandem_cost),
        cost_share=share,
        estimate=SavingsEstimate(
            method=method,
            sample_size=sum(n for _, n in estimates.values()),
            detail=detail,
        ),
        shadow=ShadowShare(
            runs=runs,
            share=round(runs / jobs, 6) if jobs else None,
            tandem_cost=money(sum((p.tandem_cost for p in pairs.values()), Decimal(0))),
            shadow_cost=money(sum((p.shadow_cost for p in pairs.values()), Decimal(0))),
        ),
        by_domain=by_domain,
    )


def truncation_report(
    session: Session, scope: Scope, span: TimeRange, policy: Policy
) -> TruncationReport:
    jobs: dict[str, int] = defaultdict(int)
    levels: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    reasons: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in repo.truncation_outcomes(session, scope, span, policy.value):
        jobs[row.domain] += row.jobs
        levels[row.domain][row.level] += row.jobs
        reasons[row.domain][row.reason or "unknown"] += row.jobs
    histograms: dict[str, list[int]] = defaultdict(lambda: [0] * SCORE_BUCKETS)
    for domain, bucket, count in repo.score_buckets(session, scope, span, policy.value):
        histograms[domain][bucket] += count
    return TruncationReport(
        start=span.start,
        end=span.end,
        policy=policy,
        domains={
            d: DomainTruncation(
                jobs=jobs.get(d, 0),
                levels={str(k): v for k, v in sorted(levels.get(d, {}).items())},
                reasons=dict(sorted(reasons.get(d, {}).items())),
                score_histogram=ScoreHistogram(edges=SCORE_EDGES, counts=histograms[d]),
            )
            for d in sorted(set(jobs) | set(histograms))
        },
    )


def period_bounds(tenant: Tenant, now: datetime) -> tuple[datetime, datetime | None]:
    """[start, end) of the tenant's current budget period; a total budget has no end."""
    match BudgetPeriod(tenant.budget_period):
        case BudgetPeriod.MONTHLY:
            start = month_start(now)
            return start, (start + timedelta(days=32)).replace(day=1)
        case BudgetPeriod.DAILY:
            start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            return start, start + timedelta(days=1)
        case BudgetPeriod.TOTAL:
            created = tenant.created_at.astimezone(UTC)
            return created.replace(hour=0, minute=0, second=0, microsecond=0), None


def budget_report(session: Session, tenant: Tenant, now: datetime) -> BudgetReport:
    """The current period's cap, spent and held amounts, and its cost per day so far.

    Read-only: a period nobody has spent in yet has no budget row, and shows the tenant's cap
    with nothing spent or reserved.
    """
    start, end = period_bounds(tenant, now)
    row = budgets.get_budget(session, tenant.id, period_key(tenant.budget_period, now))
    cap, spent, reserved = (
        (row.cap, row.spent, row.reserved) if row else (tenant.budget_cap, Decimal(0), Decimal(0))
    )
    until = now.astimezone(UTC) if end is None else min(end, now.astimezone(UTC))
    per_day = repo.daily_cost(session, tenant.id, start, until)
    days: list[date] = []
    day = start.date()
    while day <= until.date():
        days.append(day)
        day += timedelta(days=1)
    return BudgetReport(
        tenant_id=tenant.id,
        period=BudgetPeriod(tenant.budget_period),
        period_start=start,
        period_end=end,
        cap=money(cap),
        spent=money(spent),
        reserved=money(reserved),
        alert_threshold=float(tenant.soft_alert_ratio) if tenant.soft_alert_ratio else None,
        daily=[DailyCost(day=d.isoformat(), cost=money(per_day.get(d, Decimal(0)))) for d in days],
    )


T = TypeVar("T")


def _read(database_url: str, is_admin: bool, scope: Scope, build: Callable[[Session], T]) -> T:
    """One read-only unit of work; an operator naming a tenant that does not exist gets a 404,
    not an empty report."""
    with unit_of_work(database_url) as session:
        if is_admin and scope.tenant_id is not None:
            named_tenant(session, scope.tenant_id)
        return build(session)


def read_usage(
    database_url: str,
    is_admin: bool,
    scope: Scope,
    span: TimeRange,
    keys: Sequence[GroupKey],
    max_rows: int,
) -> UsageReport:
    return _read(
        database_url, is_admin, scope, lambda s: usage_report(s, scope, span, keys, max_rows)
    )


def read_savings(
    database_url: str,
    is_admin: bool,
    scope: Scope,
    span: TimeRange,
    baseline: BaselineTable | None,
    min_shadow_jobs: int,
) -> SavingsReport:
    return _read(
        database_url,
        is_admin,
        scope,
        lambda s: savings_report(s, scope, span, baseline, min_shadow_jobs),
    )


def read_truncation(
    database_url: str, is_admin: bool, scope: Scope, span: TimeRange, policy: Policy
) -> TruncationReport:
    return _read(database_url, is_admin, scope, lambda s: truncation_report(s, scope, span, policy))


def read_budget(database_url: str, tenant_id: uuid.UUID) -> BudgetReport:
    with unit_of_work(database_url) as session:
        return budget_report(session, named_tenant(session, tenant_id), datetime.now(UTC))
