"""Reserve / settle / verify against real Postgres (each test rolled back)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.budgets import (
    BudgetExceeded,
    Reservation,
    current_budget,
    period_key,
    record_reserve,
    reserve,
    settle,
    verify_ledger,
)
from shared.db.models import (
    Budget,
    BudgetAlert,
    BudgetPeriod,
    Job,
    JobEvent,
    LedgerEntry,
    Tenant,
)
from shared.errors import NotFoundError, ValidationFailed
from shared.tenants import create_tenant


def make_tenant(session: Session, cap: str = "1", **kwargs: object) -> Tenant:
    return create_tenant(session, f"t-{uuid.uuid4().hex[:10]}", budget_cap=Decimal(cap), **kwargs)  # type: ignore[arg-type]


def admit(session: Session, tenant: Tenant, amount: str) -> tuple[Job, Reservation]:
    reservation = reserve(session, tenant, Decimal(amount))
    job = Job(
        id=uuid.uuid4(),
        tenant_id=tenant.id,
        domain="math",
        question="q",
        levels=[0],
        max_answer_tokens=16,
        prompt_version="v1",
        budget_id=reservation.budget_id,
        reserved_amount=reservation.amount,
    )
    session.add(job)
    session.flush()
    record_reserve(session, tenant.id, job.id, reservation)
    return job, reservation


def budget_of(session: Session, tenant: Tenant) -> Budget:
    session.expire_all()
    return session.execute(select(Budget).where(Budget.tenant_id == tenant.id)).scalar_one()


def test_period_keys() -> None:
    now = datetime(2026, 11, 28, 23, 59, tzinfo=UTC)
    assert period_key(BudgetPeriod.MONTHLY, now) == "2026-11"
    assert period_key("daily", now) == "2026-11-28"
    assert period_key(BudgetPeriod.TOTAL, now) == "total"


def test_reserve_within_cap_then_refuse_with_figures(db_session: Session) -> None:
    tenant = make_tenant(db_session, cap="1.0")
    admit(db_session, tenant, "0.6")
    with pytest.raises(BudgetExceeded) as refused:
        reserve(db_session, tenant, Decimal("0.5"))
    body = refused.value.to_dict()
    assert refused.value.http_status == 402
    assert Decimal(body["cap"]) == Decimal("1")
    assert Decimal(body["reserved"]) == Decimal("0.6")
    assert Decimal(body["spent"]) == 0
    assert Decimal(body["requested"]) == Decimal("0.5")
    assert refused.value.remaining == Decimal("0.4")
    budget = budget_of(db_session, tenant)
    assert budget.reserved == Decimal("0.6")
    assert budget.period_key == period_key(BudgetPeriod.MONTHLY)


def test_exact_fit_is_admitted(db_session: Session) -> None:
    tenant = make_tenant(db_session, cap="1")
    admit(db_session, tenant, "0.25")
    admit(db_session, tenant, "0.75")
    assert budget_of(db_session, tenant).reserved == Decimal(1)


def test_settle_charges_actual_releases_rest_and_is_idempotent(db_session: Session) -> None:
    tenant = make_tenant(db_session, cap="10")
    job, _ = admit(db_session, tenant, "2")
    first = settle(db_session, job.id, Decimal("0.5"))
    assert (first.charged, first.released, first.already_settled) == (
        Decimal("0.5"),
        Decimal("1.5"),
        False,
    )
    again = settle(db_session, job.id, Decimal("1.9"))
    assert again.already_settled and again.charged == Decimal("0.5")
    budget = budget_of(db_session, tenant)
    assert (budget.spent, budget.reserved) == (Decimal("0.5"), Decimal(0))
    kinds = db_session.execute(
        select(LedgerEntry.kind, LedgerEntry.amount).where(LedgerEntry.job_id == job.id)
    ).all()
    assert sorted((k, a) for k, a in kinds) == [
        ("release", Decimal("1.5")),
        ("reserve", Decimal("2")),
        ("settle", Decimal("0.5")),
    ]
    assert db_session.get(Job, job.id).cost == Decimal("0.5")  # type: ignore[union-attr]
    assert verify_ledger(db_session) == []


def test_settled_money_frees_room_for_new_jobs(db_session: Session) -> None:
    tenant = make_tenant(db_session, cap="1")
    job, _ = admit(db_session, tenant, "1")
    with pytest.raises(BudgetExceeded):
        reserve(db_session, tenant, Decimal("0.5"))
    settle(db_session, job.id, Decimal("0.4"))
    admit(db_session, tenant, "0.6")
    with pytest.raises(BudgetExceeded):
        reserve(db_session, tenant, Decimal("0.01"))


def test_soft_alert_fires_once_when_crossed(db_session: Session) -> None:
    tenant = make_tenant(db_session, cap="1", soft_alert_ratio=Decimal("0.5"))
    a, _ = admit(db_session, tenant, "0.3")
    b, _ = admit(db_session, tenant, "0.3")
    c, _ = admit(db_session, tenant, "0.3")
    assert not settle(db_session, a.id, Decimal("0.3")).soft_alert
    assert settle(db_session, b.id, Decimal("0.3")).soft_alert
    assert not settle(db_session, c.id, Decimal("0.3")).soft_alert
    alerts = db_session.execute(
        select(JobEvent).where(JobEvent.kind == "budget_alert", JobEvent.job_id == b.id)
    ).scalars()
    assert [e.data["cap"] for e in alerts] == ["1"]  # plain decimal, as the API writes money
    crossed = db_session.scalars(
        select(BudgetAlert.threshold).where(
            BudgetAlert.budget_id == budget_of(db_session, tenant).id
        )
    ).all()
    assert crossed == ["soft"]


def test_settle_rejects_bad_input(db_session: Session) -> None:
    tenant = make_tenant(db_session)
    job, _ = admit(db_session, tenant, "0.1")
    with pytest.raises(ValidationFailed):
        settle(db_session, job.id, Decimal("-1"))
    with pytest.raises(NotFoundError):
        settle(db_session, uuid.uuid4(), Decimal(0))
    with pytest.raises(ValidationFailed):
        reserve(db_session, tenant, Decimal("-0.1"))


def test_verify_ledger_reports_each_broken_invariant(db_session: Session) -> None:
    tenant = make_tenant(db_session, cap="1")
    _job, reservation = admit(db_session, tenant, "0.5")
    assert verify_ledger(db_session) == []
    db_session.execute(
        update(Budget).where(Budget.id == reservation.budget_id).values(spent=Decimal("2"))
    )
    messages = [p.message for p in verify_ledger(db_session)]
    assert any("spent 2" in m and "sum of settled" in m for m in messages)
    assert any("> cap" in m for m in messages)
    db_session.execute(
        update(Budget)
        .where(Budget.id == reservation.budget_id)
        .values(spent=Decimal(0), reserved=Decimal("0.1"))
    )
    messages = [p.message for p in verify_ledger(db_session)]
    assert messages and all("open holds" in m for m in messages)


def test_current_budget_uses_the_tenants_period(db_session: Session) -> None:
    tenant = make_tenant(db_session, cap="3", budget_period=BudgetPeriod.DAILY)
    row = current_budget(db_session, tenant)
    assert row.period_key == period_key(BudgetPeriod.DAILY)
    assert row.cap == Decimal(3)
