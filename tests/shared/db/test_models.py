"""The schema's constraints hold on a real Postgres."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.db.models import Budget, ClassifierModel, Job, LedgerEntry, Tenant


def make_tenant(session: Session, name: str = "acme") -> Tenant:
    tenant = Tenant(name=name, webhook_secret="s", budget_cap=Decimal("10"))
    session.add(tenant)
    session.flush()
    return tenant


def test_money_is_exact(db_session: Session) -> None:
    tenant = make_tenant(db_session)
    budget = Budget(tenant_id=tenant.id, period_key="2026-11", cap=Decimal("10"))
    db_session.add(budget)
    db_session.flush()
    tiny = Decimal("0.000000150000")  # one token at $0.15 per million
    budget.spent = budget.spent + tiny * 3
    db_session.flush()
    db_session.refresh(budget)
    assert budget.spent == Decimal("0.000000450000")


def test_budget_cannot_go_negative(db_session: Session) -> None:
    tenant = make_tenant(db_session)
    db_session.add(
        Budget(tenant_id=tenant.id, period_key="2026-11", cap=Decimal(1), reserved=Decimal(-1))
    )
    with pytest.raises(IntegrityError):
        db_session.flush()


def test_one_ledger_entry_per_job_and_kind(db_session: Session) -> None:
    tenant = make_tenant(db_session)
    budget = Budget(tenant_id=tenant.id, period_key="2026-11", cap=Decimal(1))
    db_session.add(budget)
    db_session.flush()
    job = Job(
        tenant_id=tenant.id,
        domain="math",
        question="1+1?",
        levels=[0, 100],
        max_answer_tokens=64,
        prompt_version="math-v1",
        budget_id=budget.id,
    )
    db_session.add(job)
    db_session.flush()
    for _ in range(2):
        db_session.add(
            LedgerEntry(
                tenant_id=tenant.id,
                budget_id=budget.id,
                job_id=job.id,
                kind="reserve",
                amount=Decimal("0.1"),
            )
        )
    with pytest.raises(IntegrityError):
        db_session.flush()


def test_at_most_one_active_classifier(db_session: Session) -> None:
    for version in ("v1", "v2"):
        db_session.add(
            ClassifierModel(
                version=version,
                sha256="0" * 64,
                path="x.onnx",
                feature_names=["a"],
                thresholds=[0.5],
                active=True,
            )
        )
    with pytest.raises(IntegrityError):
        db_session.flush()
