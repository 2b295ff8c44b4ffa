"""A key's budget row beside its tenant's, against real Postgres (each test rolled back):
settlement charges and releases both in the same statements, once; the ledger check covers
key rows too."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.budgets import key_repository as key_budgets
from shared.budgets import period_key, settle, verify_ledger
from shared.budgets.keys import key_spend
from shared.db.models import Job, KeyBudget, Tenant
from shared.tenants import create_key, create_tenant, list_keys, update_key
from tests.shared.budgets.test_budgets import admit


def keyed_job(session: Session, tenant: Tenant, amount: str) -> tuple[Job, uuid.UUID]:
    """A job held in its tenant's budget (the way admission does) and in its key's row."""
    key = create_key(session, tenant, "ci", budget_cap=Decimal(1)).key
    period = period_key(tenant.budget_period)
    key_budgets.ensure_key_budget(session, key.id, period, key.budget_cap)
    row = key_budgets.get_key_budget(session, key.id, period)
    assert row is not None
    job, reservation = admit(session, tenant, amount)
    session.execute(
        update(KeyBudget)
        .where(KeyBudget.id == row.id)
        .values(reserved=KeyBudget.reserved + reservation.amount)
    )
    job.api_key_id, job.key_budget_id = key.id, row.id
    session.flush()
    return job, key.id


def test_settlement_charges_the_key_row_once(db_session: Session) -> None:
    tenant = create_tenant(db_session, f"k-{uuid.uuid4().hex[:8]}", budget_cap=Decimal(5))
    job, key_id = keyed_job(db_session, tenant, "0.3")
    first = settle(db_session, job.id, Decimal("0.1"))
    again = settle(db_session, job.id, Decimal("0.1"))
    assert not first.already_settled and again.already_settled
    db_session.expire_all()
    row = db_session.scalars(select(KeyBudget).where(KeyBudget.api_key_id == key_id)).one()
    assert (row.spent, row.reserved) == (Decimal("0.1"), Decimal(0))
    (key,) = [k for k in list_keys(db_session, tenant) if k.id == key_id]
    shown = key_spend(db_session, tenant, [key])[key_id]
    assert (shown.cap, shown.spent, shown.reserved) == (Decimal(1), Decimal("0.1"), Decimal(0))
    assert verify_ledger(db_session) == []


def test_the_ledger_check_flags_a_key_row_that_does_not_add_up(db_session: Session) -> None:
    tenant = create_tenant(db_session, f"k-{uuid.uuid4().hex[:8]}", budget_cap=Decimal(5))
    _, key_id = keyed_job(db_session, tenant, "0.3")
    db_session.execute(
        update(KeyBudget).where(KeyBudget.api_key_id == key_id).values(spent=Decimal("2"))
    )
    problems = [p for p in verify_ledger(db_session) if p.kind == "key_budget"]
    assert [p.message for p in problems] == [
        "spent 2.000000000000 != sum of settled 0",
        "spent 2.000000000000 > cap 1.000000000000",
    ]
    assert str(key_id) in problems[0].subject


def test_a_new_key_cap_applies_to_the_current_period(db_session: Session) -> None:
    tenant = create_tenant(db_session, f"k-{uuid.uuid4().hex[:8]}", budget_cap=Decimal(5))
    _, key_id = keyed_job(db_session, tenant, "0.3")
    update_key(db_session, str(key_id), {"budget_cap": Decimal(2)})
    db_session.expire_all()
    row = db_session.scalars(select(KeyBudget).where(KeyBudget.api_key_id == key_id)).one()
    assert row.cap == Decimal(2) and row.reserved == Decimal("0.3")
