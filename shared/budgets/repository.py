"""All SQL of budgets and the ledger."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Uuid, bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from shared.db.models import (
    TERMINAL_STATUSES,
    Budget,
    Job,
    LedgerEntry,
    LedgerKind,
)

TERMINAL = [s.value for s in TERMINAL_STATUSES]


@dataclass(frozen=True)
class BudgetRow:
    id: uuid.UUID
    period_key: str
    cap: Decimal
    spent: Decimal
    reserved: Decimal


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


# The settle and release entries, and (only when they are new) the charge and release in the
# job's key budget row: the key's row is locked here, before the tenant's row is by the second
# statement (:func:`apply_settlement`), the order admission locks them in, so the two cannot
# deadlock.
_INSERT_SETTLEMENT = text(
    """
    WITH entries AS (
        INSERT INTO ledger_entries (id, tenant_id, budget_id, job_id, kind, amount)
        VALUES (:settle_id, :tenant_id, :budget_id, :job_id, 'settle', :charged),
               (:release_id, :tenant_id, :budget_id, :job_id, 'release', :released)
        ON CONFLICT (job_id, kind) DO NOTHING
        RETURNING kind
    ),
    key_settled AS (
        UPDATE key_budgets
        SET spent = spent + :charged, reserved = reserved - :held, updated_at = now()
        WHERE id = :key_budget_id AND EXISTS (SELECT 1 FROM entries WHERE kind = 'settle')
    )
    SELECT kind FROM entries
    """
).bindparams(bindparam("key_budget_id", type_=Uuid))


def insert_settlement(
    session: Session,
    *,
    tenant_id: uuid.UUID,
    budget_id: uuid.UUID,
    job_id: uuid.UUID,
    charged: Decimal,
    released: Decimal,
    key_budget_id: uuid.UUID | None = None,
    held: Decimal = Decimal(0),
) -> bool:
    """The job's settle and release entries in one statement, with the key budget's charge
    (``charged``) and release (the whole ``held``); False if it was settled before (the unique
    (job, kind) keeps both rows of the first settlement, so neither is added, and the key
    budget is not touched)."""
    inserted = session.scalars(
        _INSERT_SETTLEMENT,
        {
            "settle_id": uuid.uuid4(),
            "release_id": uuid.uuid4(),
            "tenant_id": tenant_id,
            "budget_id": budget_id,
            "job_id": job_id,
            "charged": charged,
            "released": released,
            "key_budget_id": key_budget_id,
            "held": held,
        },
    ).all()
    return LedgerKind.SETTLE.value in inserted


@dataclass(frozen=True)
class CrossedAlert:
    """A threshold this settlement crossed first in its period (the row just inserted): of the
    tenant's budget, or of the submitting key's (``key_id`` set)."""

    id: uuid.UUID
    key_id: uuid.UUID | None
    period_key: str
    threshold: str
    ratio: Decimal
    cap: Decimal
    spent: Decimal
    created_at: datetime


@dataclass(frozen=True)
class SettledBudget:
    row: BudgetRow
    tenant_id: uuid.UUID
    crossed: list[CrossedAlert]


# One statement moves the tenant's money and decides the alerts. The budget UPDATE holds the
# period row's lock (and the ledger statement before it the key budget row's, which this one
# reads as it left it), so concurrent settlements of a period queue here and each sees the
# spend before it; the unique (budget_id, threshold) and (key_budget_id, threshold) let exactly
# one of them insert a threshold's alert, whatever the order and across a cap or ratio change.
# A key's thresholds are its own ratios, else its tenant's; an uncapped key has none. The key
# part is left out of the statement for a job without a key budget (most): every table a
# statement names costs its planning and locking, crossing or not. One row comes back, or one
# per threshold crossed.
_KEY_SUBJECT = """
        UNION ALL
        SELECT NULL, kb.id, kb.api_key_id, kb.period_key, kb.cap, kb.spent,
               COALESCE(k.soft_alert_ratio, t.soft_alert_ratio),
               COALESCE(k.hard_alert_ratio, t.hard_alert_ratio)
        FROM key_budgets kb
        JOIN api_keys k ON k.id = kb.api_key_id
        JOIN tenants t ON t.id = k.tenant_id
        WHERE kb.id = :key_budget_id AND kb.cap IS NOT NULL
"""
_APPLY_SETTLEMENT = """
    WITH settled AS (
        UPDATE budgets
        SET spent = spent + :charged, reserved = reserved - :held, updated_at = now()
        WHERE id = :budget_id
        RETURNING id, tenant_id, period_key, cap, spent, reserved
    ),
    subjects AS (
        SELECT s.id AS budget_id, NULL::uuid AS key_budget_id, NULL::uuid AS api_key_id,
               s.period_key, s.cap, s.spent, t.soft_alert_ratio AS soft,
               t.hard_alert_ratio AS hard
        FROM settled s JOIN tenants t ON t.id = s.tenant_id
        {key_subject}
    ),
    crossed AS (
        INSERT INTO budget_alerts (id, budget_id, key_budget_id, api_key_id, tenant_id, job_id,
                                   period_key, threshold, ratio, cap, spent)
        SELECT gen_random_uuid(), sub.budget_id, sub.key_budget_id, sub.api_key_id,
               s.tenant_id, :job_id, sub.period_key, th.threshold, th.ratio, sub.cap, sub.spent
        FROM subjects sub
        CROSS JOIN settled s
        CROSS JOIN LATERAL (VALUES ('soft', sub.soft), ('hard', sub.hard)) AS th (threshold, ratio)
        WHERE sub.cap > 0 AND sub.spent >= sub.cap * th.ratio
        ON CONFLICT DO NOTHING
        RETURNING id, api_key_id, period_key, threshold, ratio, cap, spent, created_at
    )
    SELECT s.id, s.period_key, s.cap, s.spent, s.reserved, s.tenant_id, c.id, c.api_key_id,
           c.period_key, c.threshold, c.ratio, c.cap, c.spent, c.created_at
    FROM settled s LEFT JOIN crossed c ON true
"""
# Built once each (with and without a key budget), so neither is compiled per settlement.
_APPLY = {
    False: text(_APPLY_SETTLEMENT.format(key_subject="")),
    True: text(_APPLY_SETTLEMENT.format(key_subject=_KEY_SUBJECT)).bindparams(
        bindparam("key_budget_id", type_=Uuid)
    ),
}


def apply_settlement(
    session: Session,
    budget_id: uuid.UUID,
    charged: Decimal,
    held: Decimal,
    job_id: uuid.UUID,
    key_budget_id: uuid.UUID | None = None,
) -> SettledBudget:
    """Charge and release in the tenant's budget row, and record the thresholds this charge
    crossed there and in the key budget row (charged by :func:`insert_settlement`) as budget
    alerts, in one statement."""
    params = {"budget_id": budget_id, "charged": charged, "held": held, "job_id": job_id}
    if key_budget_id is not None:
        params["key_budget_id"] = key_budget_id
    rows = session.execute(_APPLY[key_budget_id is not None], params).all()
    crossed = [CrossedAlert(*row[6:]) for row in rows if row[6] is not None]
    return SettledBudget(BudgetRow(*rows[0][:5]), rows[0][5], crossed)


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


def lock_budget(session: Session, tenant_id: uuid.UUID, key: str) -> None:
    """Hold the period's row until commit (admissions of a tenant with a concurrent-jobs limit
    serialize here, so that their count of running jobs cannot race)."""
    session.execute(
        select(Budget.id)
        .where(Budget.tenant_id == tenant_id, Budget.period_key == key)
        .with_for_update()
    )


def active_jobs(session: Session, tenant_id: uuid.UUID) -> int:
    return int(
        session.execute(
            select(func.count())
            .select_from(Job)
            .where(Job.tenant_id == tenant_id, Job.status.not_in(TERMINAL))
        ).scalar_one()
    )
