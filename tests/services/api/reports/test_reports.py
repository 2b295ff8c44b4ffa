"""The reports: figures checked against hand-computed sums on real Postgres (service level,
rolled back; jobs are rolled up the way settlement does it), then the HTTP surface (auth, tenant
isolation, CSV, errors) on a real server."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from services.accounting import service as accounting
from services.api.app import create_app
from services.api.reports import export, service
from services.api.reports import repository as reports
from services.api.reports.baseline import BaselineTable, load_baseline
from services.api.reports.params import GroupKey, Scope, TimeRange
from services.api.settings import ApiSettings
from shared.db.models import (
    TERMINAL_STATUSES,
    Budget,
    BudgetPeriod,
    Job,
    JobStatus,
    ModelCall,
    Policy,
    Tenant,
)
from shared.db.session import unit_of_work
from shared.errors import ConfigurationError, ValidationFailed
from shared.rollups import repository as rollups
from shared.rollups.buckets import LATENCY_ERROR
from shared.settings import DEV_ADMIN_KEY
from shared.tenants import create_key, create_tenant
from tests.services.api.conftest import ServerThread

MARCH = TimeRange(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))


def at(day: int, hour: int = 0, minute: int = 0, month: int = 3, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def new_tenant(session: Session, **limits: Any) -> Tenant:
    return create_tenant(session, f"reports-{uuid.uuid4().hex[:10]}", **limits)


def add_job(
    session: Session,
    tenant: Tenant,
    created: datetime,
    *,
    status: str = "succeeded",
    domain: str = "math",
    policy: str = "tandem",
    cost: str = "0",
    latency_ms: int | None = None,
    level: int | None = None,
    reason: str | None = None,
    scores: tuple[float, ...] = (),
    settle: bool = True,
    shadow_of: Job | None = None,
) -> Job:
    job = Job(
        id=uuid.uuid4(),
        tenant_id=tenant.id,
        shadow_of=None if shadow_of is None else shadow_of.id,
        shadow_of_tenant_id=None if shadow_of is None else shadow_of.tenant_id,
        shadow_of_cost=None if shadow_of is None else shadow_of.cost,
        rolled_up=shadow_of is not None,  # a shadow run is born out of the roll-ups
        status=status,
        domain=domain if shadow_of is None else shadow_of.domain,
        policy=policy,
        question="What is 2+2?",
        levels=[0, 100, 500, 1000],
        max_answer_tokens=64,
        prompt_version="test",
        cost=Decimal(cost),
        created_at=created,
        updated_at=created,
        finished_at=None if latency_ms is None else created + timedelta(milliseconds=latency_ms),
        truncation_level=level,
        termination_reason=reason,
        scores=[{"level": k, "score": s, "decision": "continue"} for k, s in enumerate(scores)],
    )
    session.add(job)
    session.flush()
    if settle and JobStatus(status) in TERMINAL_STATUSES:
        rollups.add_settled_job(session, job)
    return job


# Usage is carried by settled jobs created long before every range a test reads, so their own
# outcome never shows in a report.
CARRIER_CREATED = datetime(2020, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Use:
    """Calls of one model and role in one hour, to seed through a settled job."""

    hour: datetime
    model: str
    role: str
    calls: int
    prompt: int
    generated: int
    flops: int
    cost: str
    domain: str = "math"
    policy: str = "tandem"


def seed_usage(session: Session, tenant: Tenant, *uses: Use) -> None:
    """Each use as a settled job with ``calls`` calls at ``hour`` (the first carries the sums)."""
    for use in uses:
        job = add_job(
            session, tenant, CARRIER_CREATED, domain=use.domain, policy=use.policy, settle=False
        )
        for n in range(use.calls):
            first = n == 0
            session.add(
                ModelCall(
                    job_id=job.id,
                    step=f"s{n}",
                    role=use.role,
                    model=use.model,
                    engine="test",
                    prompt_tokens=use.prompt if first else 0,
                    generated_tokens=use.generated if first else 0,
                    flops_prompt=Decimal(use.flops if first else 0),
                    flops_generated=Decimal(0),
                    cost=Decimal(use.cost if first else 0),
                    created_at=use.hour,
                )
            )
        session.flush()
        rollups.add_settled_job(session, job)


# --- figures (service level, in a rolled-back transaction) ----------------------------------


def test_usage_sums_per_day_model_and_role_and_job_outcomes(db_session: Session) -> None:
    tenant = new_tenant(db_session)
    other = new_tenant(db_session)
    seed_usage(
        db_session,
        tenant,
        Use(at(2, 10), "big", "coordinator", 2, 100, 50, 1000, "0.001"),
        Use(at(2, 15), "big", "coordinator", 1, 40, 10, 300, "0.0002"),
        Use(at(2, 15), "small", "executor", 3, 300, 90, 200, "0.00003"),
        Use(at(5, 0), "small", "executor", 1, 10, 5, 20, "0.000001", domain="code"),
        # Outside the range (its end is exclusive): never counted.
        Use(at(1, 0, month=4), "big", "coordinator", 7, 7, 7, 7, "7"),
        Use(at(28, 23, month=2), "big", "coordinator", 7, 7, 7, 7, "7"),
    )
    seed_usage(db_session, other, Use(at(2, 10), "big", "coordinator", 9, 9, 9, 9, "9"))
    for ms in (100, 200, 300, 400):
        add_job(db_session, tenant, at(3, 12), latency_ms=ms)
    add_job(db_session, tenant, at(3, 12), status="failed", latency_ms=50)
    add_job(db_session, tenant, at(31, 23, 59), status="queued")
    add_job(db_session, tenant, at(1, 0, month=4), latency_ms=10_000)
    add_job(db_session, other, at(3, 12), latency_ms=99_999)

    keys = [GroupKey.DAY, GroupKey.MODEL, GroupKey.ROLE]
    report = service.usage_report(db_session, Scope(tenant.id), MARCH, keys, 100)

    assert report.rows[0] == {
        "day": "2026-03-02",
        "model": "big",
        "role": "coordinator",
        "calls": 3,
        "prompt_tokens": 140,
        "generated_tokens": 60,
        "flops": "1300",
        "cost": "0.0012",
    }
    assert [tuple(r.values()) for r in report.rows[1:]] == [
        ("2026-03-02", "small", "executor", 3, 300, 90, "200", "0.00003"),
        ("2026-03-05", "small", "executor", 1, 10, 5, "20", "0.000001"),
    ]
    assert report.totals.model_dump() == {
        "calls": 7,
        "prompt_tokens": 450,
        "generated_tokens": 155,
        "flops": "1520",
        "cost": "0.001231",
    }
    assert report.jobs.total == 6
    assert report.jobs.by_status["succeeded"] == 4
    assert report.jobs.by_status["failed"] == 1
    assert report.jobs.by_status["queued"] == 1
    assert report.jobs.by_status["cancelled"] == 0
    # percentile_cont over succeeded 100, 200, 300, 400 ms (linear between ranks), to the
    # latency histogram's resolution.
    latency = report.jobs.latency_ms
    assert latency.p50 == pytest.approx(250.0, rel=LATENCY_ERROR)
    assert latency.p95 == pytest.approx(385.0, rel=LATENCY_ERROR)
    assert latency.p99 == pytest.approx(397.0, rel=LATENCY_ERROR)

    by_domain = service.usage_report(db_session, Scope(tenant.id), MARCH, [GroupKey.DOMAIN], 100)
    assert [(r["domain"], r["calls"]) for r in by_domain.rows] == [("code", 1), ("math", 6)]


def test_an_empty_range_has_zero_totals_and_null_latency(db_session: Session) -> None:
    tenant = new_tenant(db_session)
    report = service.usage_report(db_session, Scope(tenant.id), MARCH, [GroupKey.DAY], 100)
    assert report.rows == []
    assert report.totals.cost == "0" and report.totals.flops == "0"
    assert report.jobs.total == 0
    assert report.jobs.latency_ms.model_dump() == {"p50": None, "p95": None, "p99": None}
    # A range of no time at all (start == end), on an hour or not, for a tenant or everyone.
    add_job(db_session, tenant, at(2, 10), latency_ms=5)
    for moment in (at(2, 10), at(2, 10, 30)):
        instant = TimeRange(moment, moment)
        for scope in (Scope(tenant.id), Scope(None)):
            for keys in ([GroupKey.HOUR], [GroupKey.DAY, GroupKey.MODEL]):
                empty = service.usage_report(db_session, scope, instant, keys, 100)
                assert empty.jobs.total == 0
            assert service.savings_report(db_session, scope, instant, None, 1).jobs == 0
            truncation = service.truncation_report(db_session, scope, instant, Policy.TANDEM)
            assert truncation.domains == {}


def test_calls_roll_up_into_their_utc_hour_through_the_accounting_upsert(
    db_session: Session,
) -> None:
    tenant = new_tenant(db_session)
    job = add_job(db_session, tenant, at(10, 13), domain="code", settle=False)
    for step, (when, role, cost) in enumerate(
        [
            (at(10, 13, 59), "coordinator", "0.002"),
            (at(10, 14, 0), "scorer", "0.0001"),
            (at(10, 14, 30), "coordinator", "0.003"),
        ]
    ):
        call = ModelCall(
            job_id=job.id,
            step=f"s{step}",
            role=role,
            model="m",
            engine="test",
            prompt_tokens=10,
            generated_tokens=step,
            flops_prompt=Decimal(100),
            flops_generated=Decimal(step),
            cost=Decimal(cost),
            created_at=when,
        )
        db_session.add(call)
    assert rollups.add_settled_job(db_session, job)

    keys = [GroupKey.HOUR, GroupKey.ROLE, GroupKey.DOMAIN]
    report = service.usage_report(db_session, Scope(tenant.id), MARCH, keys, 100)
    assert [
        (r["hour"], r["role"], r["domain"], r["calls"], r["flops"], r["cost"]) for r in report.rows
    ] == [
        ("2026-03-10T13:00:00Z", "coordinator", "code", 1, "100", "0.002"),
        ("2026-03-10T14:00:00Z", "coordinator", "code", 1, "102", "0.003"),
        ("2026-03-10T14:00:00Z", "scorer", "code", 1, "101", "0.0001"),
    ]


def test_more_rows_than_allowed_is_a_422(db_session: Session) -> None:
    tenant = new_tenant(db_session)
    seed_usage(
        db_session, tenant, *(Use(at(2, h), "m", "executor", 1, 1, 1, 1, "1") for h in range(3))
    )
    service.usage_report(db_session, Scope(tenant.id), MARCH, [GroupKey.HOUR], 3)
    with pytest.raises(ValidationFailed, match="more than 2 rows") as raised:
        service.usage_report(db_session, Scope(tenant.id), MARCH, [GroupKey.HOUR], 2)
    assert raised.value.field == "group_by"


def seed_savings(session: Session) -> Tenant:
    tenant = new_tenant(session)
    add_job(session, tenant, at(2), cost="0.001")
    add_job(session, tenant, at(3), cost="0.003")
    add_job(session, tenant, at(3), domain="code", cost="0.002")
    add_job(session, tenant, at(3), status="failed", cost="0.5")  # not a finished answer
    add_job(session, tenant, at(3), policy="slm_only", cost="0.0001")  # neither side
    for cost in ("0.01", "0.02", "0.03"):
        add_job(session, tenant, at(4), policy="llm_only", cost=cost)
    add_job(session, tenant, at(4), policy="llm_only", domain="code", cost="0.05")
    add_job(session, tenant, at(4), policy="llm_only", status="failed", cost="9")
    return tenant


def test_savings_use_measured_llm_only_jobs_when_every_domain_has_enough(
    db_session: Session,
) -> None:
    tenant = seed_savings(db_session)
    report = service.savings_report(db_session, Scope(tenant.id), MARCH, None, 1)
    # math: 2 jobs x mean(0.01, 0.02, 0.03) = 0.04; code: 1 x 0.05.
    assert report.jobs == 3
    assert report.tandem_cost == "0.006"
    assert report.counterfactual_cost == "0.09"
    assert report.savings == "0.084"
    assert report.cost_share == pytest.approx(0.066667)
    assert report.estimate.method == "llm_only_jobs"
    assert report.estimate.sample_size == 4
    assert "code 1, math 3" in report.estimate.detail
    assert report.by_domain["math"].model_dump() == {
        "jobs": 2,
        "tandem_cost": "0.004",
        "counterfactual_cost": "0.04",
        "sample_size": 3,
        "shadow_runs": 0,
    }
    assert report.shadow.model_dump() == {
        "runs": 0,
        "share": 0.0,
        "tandem_cost": "0",
        "shadow_cost": "0",
    }


def test_savings_fall_back_to_the_offline_table(db_session: Session) -> None:
    tenant = seed_savings(db_session)
    table = BaselineTable.model_validate(
        {
            "source": "llm_only test split",
            "domains": {
                "math": {"mean_cost": "0.01", "sample_size": 100},
                "code": {"mean_cost": "0.04", "sample_size": 50},
            },
        }
    )
    # code has one llm_only job, fewer than 3: the shadow sample does not cover every domain.
    report = service.savings_report(db_session, Scope(tenant.id), MARCH, table, 3)
    assert report.estimate.method == "offline_table"
    assert report.estimate.sample_size == 150
    assert "llm_only test split" in report.estimate.detail
    assert report.counterfactual_cost == "0.06"  # 2 x 0.01 + 1 x 0.04
    assert report.savings == "0.054"
    assert report.cost_share == pytest.approx(0.1)


def test_savings_say_none_rather_than_guess(db_session: Session) -> None:
    tenant = seed_savings(db_session)
    table = BaselineTable.model_validate(
        {"domains": {"math": {"mean_cost": "0.01", "sample_size": 100}}}
    )
    report = service.savings_report(db_session, Scope(tenant.id), MARCH, table, 3)
    assert report.estimate.method == "none"
    assert report.estimate.sample_size == 0
    assert "code" in report.estimate.detail and "math" not in report.estimate.detail
    assert report.tandem_cost == "0.006"
    assert (report.counterfactual_cost, report.savings, report.cost_share) == (None, None, None)

    empty = service.savings_report(db_session, Scope(new_tenant(db_session).id), MARCH, table, 1)
    assert empty.jobs == 0 and empty.estimate.method == "none"
    assert empty.counterfactual_cost is None


def test_savings_prefer_shadow_runs_paired_with_the_same_jobs(db_session: Session) -> None:
    tenant, other, operator = (new_tenant(db_session) for _ in range(3))
    seed_savings(db_session)  # another tenant's llm_only jobs: not this scope
    math = [add_job(db_session, tenant, at(3), cost=c) for c in ("0.001", "0.003", "0.002")]
    code = [add_job(db_session, tenant, at(3), domain="code", cost=c) for c in ("0.004", "0.001")]
    for parent, cost in ((math[0], "0.02"), (math[1], "0.04"), (code[0], "0.05")):
        add_job(db_session, operator, at(3, 0, 40), policy="llm_only", cost=cost, shadow_of=parent)
    # Half a pair says nothing.
    add_job(
        db_session, operator, at(3, 0, 40), policy="llm_only", status="failed", shadow_of=code[1]
    )
    elsewhere = add_job(db_session, other, at(3), cost="0.002")
    add_job(db_session, operator, at(3, 0, 40), policy="llm_only", cost="0.9", shadow_of=elsewhere)

    report = service.savings_report(db_session, Scope(tenant.id), MARCH, None, 1)
    # math: 0.006 x 0.06 / 0.004 = 0.09; code: 0.005 x 0.05 / 0.004 = 0.0625.
    assert report.estimate.method == "shadow"
    assert report.estimate.sample_size == 3
    assert "code 1, math 2 pairs" in report.estimate.detail
    assert (report.jobs, report.tandem_cost) == (5, "0.011")
    assert (report.counterfactual_cost, report.savings) == ("0.1525", "0.1415")
    assert report.shadow.model_dump() == {
        "runs": 3,
        "share": 0.6,
        "tandem_cost": "0.008",
        "shadow_cost": "0.11",
    }
    assert report.by_domain["code"].model_dump() == {
        "jobs": 2,
        "tandem_cost": "0.005",
        "counterfactual_cost": "0.0625",
        "sample_size": 1,
        "shadow_runs": 1,
    }
    # Too few pairs for a domain: the next source, named as such.
    fallback = service.savings_report(db_session, Scope(tenant.id), MARCH, None, 2)
    assert fallback.estimate.method == "none" and fallback.shadow.runs == 3
    assert "code (1 shadow runs and 0 llm_only jobs" in fallback.estimate.detail
    # The shadow runs are the operator's measurement, never a job of the operator's account,
    # whether read from the roll-ups or raw (the partial hour they were made in).
    for span in (MARCH, TimeRange(at(3, 0, 30), at(4))):
        counts = service.usage_report(db_session, Scope(operator.id), span, [GroupKey.DAY], 10)
        assert counts.jobs.total == 0
        assert reports.succeeded_cost(db_session, Scope(operator.id), span, ["llm_only"]) == []


def test_truncation_levels_reasons_and_score_histogram_per_domain(db_session: Session) -> None:
    tenant = new_tenant(db_session)
    # Settled (rolled up as accounting does it when it settles each job):
    add_job(db_session, tenant, at(2), level=0, reason="sufficient", scores=(0.95,))
    add_job(db_session, tenant, at(2), level=1, reason="sufficient", scores=(0.05, 1.0))
    add_job(db_session, tenant, at(2), level=1, reason="max_level", scores=(0.15, 0.55))
    add_job(db_session, tenant, at(2), level=3, reason="max_level")
    add_job(db_session, tenant, at(2), domain="code", level=2, reason="budget", scores=(0.6,))
    add_job(db_session, tenant, at(2), policy="llm_only", level=3, reason="policy")
    add_job(db_session, tenant, at(1, month=4), level=0, reason="sufficient", scores=(0.5,))
    # Decided but not settled yet: in the levels, not yet in the histogram.
    add_job(
        db_session,
        tenant,
        at(2),
        status="executing",
        level=1,
        reason="sufficient",
        scores=(0.35, 0.85),
    )
    add_job(db_session, tenant, at(2), status="coordinating", scores=(0.35,))  # undecided

    report = service.truncation_report(db_session, Scope(tenant.id), MARCH, Policy.TANDEM)
    assert set(report.domains) == {"code", "math"}
    math = report.domains["math"]
    assert math.jobs == 5
    assert math.levels == {"0": 1, "1": 3, "3": 1}
    assert math.reasons == {"max_level": 2, "sufficient": 3}
    assert math.score_histogram.edges == [k / 10 for k in range(11)]
    # 0.05 -> [0, .1); 0.15 -> [.1, .2); 0.55 -> [.5, .6); 0.95 and 1.0 -> the last tenth.
    assert math.score_histogram.counts == [1, 1, 0, 0, 0, 1, 0, 0, 0, 2]
    code = report.domains["code"]
    assert (code.jobs, code.levels, code.reasons) == (1, {"2": 1}, {"budget": 1})
    assert code.score_histogram.counts == [0, 0, 0, 0, 0, 0, 1, 0, 0, 0]

    baseline = service.truncation_report(db_session, Scope(tenant.id), MARCH, Policy.LLM_ONLY)
    assert baseline.domains["math"].reasons == {"policy": 1}


def test_budget_of_the_current_period_with_cost_per_day(db_session: Session) -> None:
    tenant = new_tenant(db_session, budget_cap=Decimal(10), soft_alert_ratio=Decimal("0.75"))
    db_session.add(
        Budget(
            tenant_id=tenant.id,
            period_key="2026-03",
            cap=Decimal(10),
            spent=Decimal("1.5"),
            reserved=Decimal("0.25"),
        )
    )
    seed_usage(
        db_session,
        tenant,
        Use(at(1, 5), "m", "executor", 1, 1, 1, 1, "0.5"),
        Use(at(3, 11), "m", "executor", 1, 1, 1, 1, "1"),
        Use(at(3, 13), "m", "executor", 1, 1, 1, 1, "3"),  # after "now"
        Use(at(28, 11, month=2), "m", "executor", 1, 1, 1, 1, "5"),
    )

    report = service.budget_report(db_session, tenant, at(3, 12, 30))
    assert report.period is BudgetPeriod.MONTHLY
    assert (report.period_start, report.period_end) == (at(1), at(1, month=4))
    assert (report.cap, report.spent, report.reserved) == ("10", "1.5", "0.25")
    assert report.alert_threshold == 0.75
    assert [(d.day, d.cost) for d in report.daily] == [
        ("2026-03-01", "0.5"),
        ("2026-03-02", "0"),
        ("2026-03-03", "1"),
    ]

    # No budget row yet (nothing admitted this period): the cap, nothing spent; read-only.
    daily = new_tenant(db_session, budget_cap=Decimal(3), budget_period=BudgetPeriod.DAILY)
    report = service.budget_report(db_session, daily, at(3, 12))
    assert (report.period_start, report.period_end) == (at(3), at(4))
    assert (report.cap, report.spent, report.reserved) == ("3", "0", "0")
    assert [d.day for d in report.daily] == ["2026-03-03"]

    total = new_tenant(db_session, budget_period=BudgetPeriod.TOTAL)
    report = service.budget_report(db_session, total, datetime.now(UTC))
    assert report.period_end is None and report.period is BudgetPeriod.TOTAL


def test_a_malformed_baseline_file_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"domains": {"math": {"mean_cost": "-1", "sample_size": 3}}}))
    with pytest.raises(ConfigurationError, match="malformed"):
        load_baseline(path)
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_baseline(tmp_path / "missing.json")
    assert load_baseline(None) is None


# --- the HTTP surface (a real server; seeds are committed, so each test has its own
# tenants and, where it reads every tenant, its own month) ------------------------------------


@dataclass
class Caller:
    tenant: Tenant
    client: httpx.Client


MakeCaller = Callable[..., Caller]


@pytest.fixture(scope="module")
def reports_server(
    database_url: str, api_redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    baseline = tmp_path_factory.mktemp("reports") / "baseline.json"
    baseline.write_text(
        json.dumps(
            {
                "source": "llm_only evaluation",
                "domains": {"math": {"mean_cost": "0.01", "sample_size": 200}},
            }
        )
    )
    settings = ApiSettings(
        database_url=database_url,
        redis_url=api_redis_url,
        savings_baseline_file=baseline,
        savings_min_shadow_jobs=5,
    )
    with ServerThread(create_app(settings)) as running:
        yield running


@pytest.fixture
def admin_client(reports_server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=reports_server.url, headers={"X-Admin-Key": DEV_ADMIN_KEY}, timeout=30
    ) as client:
        yield client


@pytest.fixture
def caller(reports_server: ServerThread) -> Iterator[MakeCaller]:
    clients: list[httpx.Client] = []

    def make(**limits: Any) -> Caller:
        with unit_of_work() as session:
            tenant = new_tenant(session, **limits)
            secret = create_key(session, tenant, "reports").secret
        client = httpx.Client(
            base_url=reports_server.url,
            headers={"Authorization": f"Bearer {secret}"},
            timeout=30,
        )
        clients.append(client)
        return Caller(tenant, client)

    yield make
    for client in clients:
        client.close()


def seed_usage_month(tenant: Tenant, month: int, n: int, year: int = 2026) -> None:
    """Two roll-up rows and one succeeded job on the 2nd of the month, all scaled by ``n``."""
    nine, ten = (datetime(year, month, 2, hour, tzinfo=UTC) for hour in (9, 10))
    cost = Decimal("0.0001") * n
    with unit_of_work() as session:
        seed_usage(
            session,
            tenant,
            Use(nine, "big", "coordinator", n, 10 * n, 5 * n, 100 * n, str(cost)),
            Use(ten, "small", "executor", 2 * n, 20 * n, 8 * n, 30 * n, str(cost / 5)),
        )
        add_job(session, tenant, nine, latency_ms=1000 * n)


MAY = {"start": "2026-05-01", "end": "2026-05-31"}


def test_usage_as_json_and_csv(caller: MakeCaller) -> None:
    a = caller()
    seed_usage_month(a.tenant, 5, 1)
    answer = a.client.get("/v1/reports/usage", params={**MAY, "group_by": "hour,model"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["start"] == "2026-05-01T00:00:00Z" and body["end"] == "2026-06-01T00:00:00Z"
    assert body["group_by"] == ["hour", "model"]
    assert body["rows"] == [
        {
            "hour": "2026-05-02T09:00:00Z",
            "model": "big",
            "calls": 1,
            "prompt_tokens": 10,
            "generated_tokens": 5,
            "flops": "100",
            "cost": "0.0001",
        },
        {
            "hour": "2026-05-02T10:00:00Z",
            "model": "small",
            "calls": 2,
            "prompt_tokens": 20,
            "generated_tokens": 8,
            "flops": "30",
            "cost": "0.00002",
        },
    ]
    assert body["totals"] == {
        "calls": 3,
        "prompt_tokens": 30,
        "generated_tokens": 13,
        "flops": "130",
        "cost": "0.00012",
    }
    assert body["jobs"]["total"] == 1 and body["jobs"]["by_status"]["succeeded"] == 1
    assert body["jobs"]["latency_ms"]["p50"] == pytest.approx(1000.0, rel=LATENCY_ERROR)

    expected_csv = (
        "hour,model,calls,prompt_tokens,generated_tokens,flops,cost\n"
        "2026-05-02T09:00:00Z,big,1,10,5,100,0.0001\n"
        "2026-05-02T10:00:00Z,small,2,20,8,30,0.00002\n"
    )
    params = {**MAY, "group_by": "hour,model"}
    as_csv = a.client.get("/v1/reports/usage", params={**params, "format": "csv"})
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.text == expected_csv
    by_accept = a.client.get("/v1/reports/usage", params=params, headers={"Accept": "text/csv"})
    assert by_accept.headers["content-type"].startswith("text/csv")
    assert by_accept.text == expected_csv
    explicit_json = a.client.get(
        "/v1/reports/usage", params={**MAY, "format": "json"}, headers={"Accept": "text/csv"}
    )
    assert explicit_json.json()["rows"][0]["day"] == "2026-05-02"


def test_a_tenant_sees_only_its_own_figures(caller: MakeCaller, admin_client: httpx.Client) -> None:
    a, b = caller(), caller()
    seed_usage_month(a.tenant, 5, 1)
    seed_usage_month(b.tenant, 5, 10)

    def calls(client: httpx.Client, **params: str) -> int:
        answer = client.get("/v1/reports/usage", params={**MAY, **params})
        assert answer.status_code == 200, answer.text
        return int(answer.json()["totals"]["calls"])

    assert calls(a.client) == 3
    assert calls(b.client) == 30
    assert calls(admin_client, tenant_id=str(b.tenant.id)) == 30
    as_bearer = httpx.Client(
        base_url=str(admin_client.base_url), headers={"Authorization": f"Bearer {DEV_ADMIN_KEY}"}
    )
    with as_bearer:
        assert calls(as_bearer, tenant_id=str(a.tenant.id)) == 3

    for path, params, field in [
        ("/v1/reports/usage", {"tenant_id": str(b.tenant.id)}, "tenant_id"),
        ("/v1/reports/usage", {"group_by": "day,tenant"}, "group_by"),
        ("/v1/reports/savings", {"tenant_id": str(b.tenant.id)}, "tenant_id"),
        ("/v1/reports/truncation", {"tenant_id": str(b.tenant.id)}, "tenant_id"),
        ("/v1/reports/budget", {"tenant_id": str(b.tenant.id)}, "tenant_id"),
    ]:
        refused = a.client.get(path, params=params)
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json()["error"]["code"] == "forbidden"
        assert refused.json()["error"]["field"] == field

    truncation = b.client.get("/v1/reports/truncation", params=MAY).json()
    assert truncation["policy"] == "tandem" and truncation["domains"] == {}
    budget = a.client.get("/v1/reports/budget").json()
    assert budget["tenant_id"] == str(a.tenant.id)
    assert admin_client.get("/v1/reports/budget", params={"tenant_id": str(a.tenant.id)}).json()[
        "tenant_id"
    ] == str(a.tenant.id)

    anonymous = httpx.get(f"{admin_client.base_url}/v1/reports/usage")
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthorized"
    forged = httpx.get(
        f"{admin_client.base_url}/v1/reports/usage", headers={"Authorization": "Bearer tk_nope"}
    )
    assert forged.status_code == 401
    wrong_admin = httpx.get(
        f"{admin_client.base_url}/v1/reports/usage", headers={"X-Admin-Key": "not-it"}
    )
    assert wrong_admin.status_code == 403


def test_the_admin_groups_every_tenant(caller: MakeCaller, admin_client: httpx.Client) -> None:
    # A month no other test writes to: every tenant in it is one of these two.
    a, b = caller(), caller()
    seed_usage_month(a.tenant, 7, 1, year=2025)
    seed_usage_month(b.tenant, 7, 2, year=2025)
    params = {"start": "2025-07-01", "end": "2025-07-31", "group_by": "tenant,role"}
    body = admin_client.get("/v1/reports/usage", params=params).json()
    rows = {(r["tenant"], r["role"]): r for r in body["rows"]}
    assert set(rows) == {
        (str(t.id), role) for t in (a.tenant, b.tenant) for role in ("coordinator", "executor")
    }
    assert rows[(str(b.tenant.id), "executor")]["calls"] == 4
    assert rows[(str(a.tenant.id), "coordinator")]["tenant_name"] == a.tenant.name
    assert body["totals"]["calls"] == 9
    assert body["jobs"]["total"] == 2

    as_csv = admin_client.get("/v1/reports/usage", params={**params, "format": "csv"}).text
    header, *lines = as_csv.splitlines()
    assert header == "tenant,tenant_name,role,calls,prompt_tokens,generated_tokens,flops,cost"
    assert len(lines) == 4


@pytest.mark.parametrize("start", ["=", "+", "-", "@"])  # names are stripped: tab and CR below
def test_csv_cells_a_spreadsheet_would_run_are_text(admin_client: httpx.Client, start: str) -> None:
    """A tenant (or model) name starting like a formula is exported behind an apostrophe."""
    name = f'{start}HYPERLINK("http://x.invalid","y") {uuid.uuid4().hex[:6]}'
    with unit_of_work() as session:
        tenant = create_tenant(session, name)
    seed_usage_month(tenant, 9, 1)
    params = {
        "start": "2026-09-01",
        "end": "2026-09-30",
        "group_by": "tenant,model",
        "tenant_id": str(tenant.id),
        "format": "csv",
    }
    answer = admin_client.get("/v1/reports/usage", params=params)
    assert answer.status_code == 200, answer.text
    header, *rows = csv.reader(io.StringIO(answer.text))
    assert header[:3] == ["tenant", "tenant_name", "model"]
    assert {row[1] for row in rows} == {"'" + name}
    assert [row[2] for row in rows] == ["big", "small"]  # ordinary cells are untouched
    # JSON is data, not a spreadsheet: the name as it is.
    as_json = admin_client.get("/v1/reports/usage", params={**params, "format": "json"}).json()
    assert {row["tenant_name"] for row in as_json["rows"]} == {name}


def test_csv_escaping_of_single_cells() -> None:
    assert [export.cell(v) for v in ("=1+2", "-3", "+x", "@SUM(A1)", "\tx", "\rx")] == [
        "'=1+2",
        "'-3",
        "'+x",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
    ]
    assert [export.cell(v) for v in ("big", "a=b", 12, None, "0.0001")] == [
        "big",
        "a=b",
        "12",
        "",
        "0.0001",
    ]


def test_savings_over_http_name_their_estimate(caller: MakeCaller) -> None:
    a = caller()
    with unit_of_work() as session:
        add_job(session, a.tenant, at(3, month=6), cost="0.002")
        add_job(session, a.tenant, at(4, month=6), cost="0.004")
        add_job(session, a.tenant, at(4, month=6), policy="llm_only", cost="0.05")  # 1 < 5
    params = {"start": "2026-06-01", "end": "2026-06-30"}
    body = a.client.get("/v1/reports/savings", params=params).json()
    assert body["estimate"]["method"] == "offline_table"
    assert body["estimate"]["sample_size"] == 200
    assert "llm_only evaluation" in body["estimate"]["detail"]
    assert (body["jobs"], body["tandem_cost"]) == (2, "0.006")
    assert (body["counterfactual_cost"], body["savings"]) == ("0.02", "0.014")
    assert body["cost_share"] == pytest.approx(0.3)


def test_settlement_feeds_the_reports(caller: MakeCaller) -> None:
    """The accounting service's settlement writes the roll-ups the reports read."""
    a = caller()
    with unit_of_work() as session:
        job = add_job(session, a.tenant, at(5, 10, 20, month=8), status="settling")
        job.truncation_level, job.termination_reason = 1, "sufficient"
        job.scores = [{"level": 0, "score": 0.25}, {"level": 1, "score": 0.75}]
        calls = [
            (at(5, 10, 25, month=8), "coordinator", "0.004"),
            (at(5, 11, 5, month=8), "executor", "0.0005"),
        ]
        for step, (when, role, cost) in enumerate(calls):
            session.add(
                ModelCall(
                    job_id=job.id,
                    step=f"s{step}",
                    role=role,
                    model=role,
                    engine="test",
                    prompt_tokens=100,
                    generated_tokens=10,
                    flops_prompt=Decimal(1000),
                    flops_generated=Decimal(100),
                    cost=Decimal(cost),
                    created_at=when,
                )
            )
    accounting.settle_job(job.id)
    accounting.settle_job(job.id)  # redelivered: counted once

    august = {"start": "2026-08-01", "end": "2026-08-31"}
    usage = a.client.get("/v1/reports/usage", params={**august, "group_by": "hour,role"}).json()
    assert [(r["hour"], r["role"], r["calls"], r["cost"]) for r in usage["rows"]] == [
        ("2026-08-05T10:00:00Z", "coordinator", 1, "0.004"),
        ("2026-08-05T11:00:00Z", "executor", 1, "0.0005"),
    ]
    assert usage["totals"]["flops"] == "2200"
    assert usage["jobs"]["by_status"]["succeeded"] == 1
    truncation = a.client.get("/v1/reports/truncation", params=august).json()
    math = truncation["domains"]["math"]
    assert (math["jobs"], math["levels"], math["reasons"]) == (1, {"1": 1}, {"sufficient": 1})
    assert math["score_histogram"]["counts"] == [0, 0, 1, 0, 0, 0, 0, 1, 0, 0]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/reports/usage", {"start": "2026-05-02", "end": "2026-05-01"}, "end"),
        ("/v1/reports/usage", {"start": "2026-05-02T10:00:00Z", "end": "2026-05-02T09:00Z"}, "end"),
        ("/v1/reports/usage", {"start": "yesterday"}, "start"),
        ("/v1/reports/usage", {"end": "2026-13-01"}, "end"),
        ("/v1/reports/usage", {"end": "9999-12-31"}, "end"),
        ("/v1/reports/usage", {"start": "0001-01-01T00:00:00+01:00"}, "start"),
        ("/v1/reports/usage", {"start": "2999-01-01"}, "start"),
        ("/v1/reports/usage", {"group_by": "day,weekday"}, "group_by"),
        ("/v1/reports/usage", {"group_by": ","}, "group_by"),
        ("/v1/reports/usage", {"format": "xml"}, "format"),
        ("/v1/reports/usage", {"tenant_id": "not-a-uuid"}, "tenant_id"),
        ("/v1/reports/savings", {"start": "2026-02-30"}, "start"),
        ("/v1/reports/truncation", {"policy": "greedy"}, "policy"),
        ("/v1/reports/budget", {}, "tenant_id"),
    ],
)
def test_bad_parameters_are_422_json_errors(
    admin_client: httpx.Client, path: str, params: dict[str, str], field: str
) -> None:
    answer = admin_client.get(path, params=params)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["field"] == field
    assert error["message"]


def test_an_unknown_tenant_is_a_404(admin_client: httpx.Client) -> None:
    for path in ("/v1/reports/usage", "/v1/reports/budget", "/v1/reports/savings"):
        answer = admin_client.get(path, params={"tenant_id": str(uuid.uuid4())})
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "not_found"
        assert answer.json()["error"]["field"] == "tenant_id"
