"""All SQL of budgets and the ledger."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from shared.db.models import Budget, Job, JobEvent, LedgerEntry, LedgerKind


@dataclass(frozen=True)
class BudgetRow:
    id: uuid.UUID
    period_key: str
    cap: Decimal
    spent: Decimal
    reserved: Decimal
    alert_sent_at: datetime | None = None


def ensure_budget(session: Session, tenant_id: uuid.UUID, key: str, cap: Decimal) -> None:
    """Create the period's row on first use; an existing row keeps its own cap."""
    session.execute(
        pg_insert(Budget)
        .values(id=uuid.uuid4(), tenant_id=tenant_id, period_key=key, cap=cap)
        .on_conflict_do_nothing(index_elements=["tenant_id", "period_key"])
    )


def try_reserve(
    session: Session, tenant_id: uuid.UUID, key: str, amount: Decimal
) -> BudgetRow | None:
    """The one conditional update: adds ``amount`` only if spent + reserved + amount <= cap."""
    row = session.execute(
        update(Budget)
        .where(
            Budget.tenant_id == tenant_id,
            Budget.period_key == key,
            Budget.spent + Budget.reserved + amount <= Budget.cap,
        )
        .values(reserved=Budget.reserved + amount)
        .returning(Budget.id, Budget.period_key, Budget.cap, Budget.spent, Budget.reserved)
    ).one_or_none()
    return None if row is None else BudgetRow(*row)


def get_budget(session: Session, tenant_id: uuid.UUID, key: str) -> BudgetRow | None:
    row = session.execute(
        select(
            Budget.id,
            Budget.period_key,
            Budget.cap,
            Budget.spent,
            Budget.reserved,
            Budget.alert_sent_at,
        ).where(Budget.tenant_id == tenant_id, Budget.period_key == key)
    ).one_or_none()
    return None if row is None else BudgetRow(*row)


def set_cap(session: Session, tenant_id: uuid.UUID, key: str, cap: Decimal) -> None:
    session.execute(
        update(Budget)
        .where(Budget.tenant_id == tenant_id, Budget.period_key == key)
        .values(cap=cap)
    )


def insert_entry(
    session: Session,
    *,
    tenant_id: uuid.UUID,
    budget_id: uuid.UUID,
    job_id: uuid.UUID,
    kind: LedgerKind,
    amount: Decimal,
) -> bool:
    """Insert a ledger entry unless the job already has one of that kind; True if inserted."""
    inserted = session.execute(
        pg_insert(LedgerEntry)
        .values(
            id=uuid.uuid4(),
            tenant_id=tenant_id,
            budget_id=budget_id,
            job_id=job_id,
            kind=kind.value,
            amount=amount,
        )
        .on_conflict_do_nothing(index_elements=["job_id", "kind"])
        .returning(LedgerEntry.id)
    ).one_or_none()
    return inserted is not None


def entry_amount(session: Session, job_id: uuid.UUID, kind: LedgerKind) -> Decimal | None:
    return session.execute(
        select(LedgerEntry.amount).where(
            LedgerEntry.job_id == job_id, LedgerEntry.kind == kind.value
        )
    ).scalar_one_or_none()


def apply_settlement(
    session: Session, budget_id: uuid.UUID, charged: Decimal, held: Decimal
) -> BudgetRow:
    row = session.execute(
        update(Budget)
        .where(Budget.id == budget_id)
        .values(spent=Budget.spent + charged, reserved=Budget.reserved - held)
        .returning(
            Budget.id,
            Budget.period_key,
            Budget.cap,
            Budget.spent,
            Budget.reserved,
            Budget.alert_sent_at,
        )
    ).one()
    return BudgetRow(*row)


def mark_alert_sent(session: Session, budget_id: uuid.UUID) -> bool:
    """Claim the period's soft alert; only the first crossing gets True."""
    claimed = session.execute(
        update(Budget)
        .where(Budget.id == budget_id, Budget.alert_sent_at.is_(None))
        .values(alert_sent_at=func.now())
        .returning(Budget.id)
    ).one_or_none()
    return claimed is not None


def lock_job(session: Session, job_id: uuid.UUID) -> Job | None:
    return session.execute(
        select(Job).where(Job.id == job_id).with_for_update()
    ).scalar_one_or_none()


def set_job_cost(session: Session, job_id: uuid.UUID, cost: Decimal) -> None:
    session.execute(update(Job).where(Job.id == job_id).values(cost=cost))


def add_event(session: Session, job_id: uuid.UUID, kind: str, data: dict[str, object]) -> None:
    session.execute(insert(JobEvent).values(job_id=job_id, kind=kind, data=data))


_LEDGER_CHECKS = text(
    """
    WITH sums AS (
        SELECT b.id, b.tenant_id, b.period_key, b.cap, b.spent, b.reserved,
               COALESCE((SELECT SUM(amount) FROM ledger_entries s
                         WHERE s.budget_id = b.id AND s.kind = 'settle'), 0) AS settled,
               COALESCE((SELECT SUM(r.amount) FROM ledger_entries r
                         WHERE r.budget_id = b.id AND r.kind = 'reserve'
                           AND NOT EXISTS (SELECT 1 FROM ledger_entries s
                                           WHERE s.job_id = r.job_id AND s.kind = 'settle')),
                        0) AS open_holds
        FROM budgets b
    )
    SELECT id, tenant_id, period_key, cap, spent, reserved, settled, open_holds
    FROM sums
    WHERE spent <> settled OR reserved <> open_holds OR spent > cap
    """
)

_JOB_CHECKS = text(
    """
    SELECT r.job_id, r.amount AS reserved, s.amount AS settled, l.amount AS released
    FROM ledger_entries r
    LEFT JOIN ledger_entries s ON s.job_id = r.job_id AND s.kind = 'settle'
    LEFT JOIN ledger_entries l ON l.job_id = r.job_id AND l.kind = 'release'
    WHERE r.kind = 'reserve'
      AND ((s.amount IS NULL) <> (l.amount IS NULL)
           OR (s.amount IS NOT NULL AND l.amount <> GREATEST(r.amount - s.amount, 0)))
    UNION ALL
    SELECT s.job_id, NULL, s.amount, NULL
    FROM ledger_entries s
    WHERE s.kind IN ('settle', 'release')
      AND NOT EXISTS (SELECT 1 FROM ledger_entries r WHERE r.job_id = s.job_id
                      AND r.kind = 'reserve')
    """
)


def broken_budgets(session: Session) -> list[tuple[object, ...]]:
    return [tuple(row) for row in session.execute(_LEDGER_CHECKS)]


def broken_jobs(session: Session) -> list[tuple[object, ...]]:
    return [tuple(row) for row in session.execute(_JOB_CHECKS)]
