"""All SQL of key budgets: a key's spend per period, held and settled beside its tenant's
budget row (the admission statement, :func:`shared.jobs.repository.admit`, and the settlement's
ledger insert, :func:`shared.budgets.repository.insert_settlement`, move both)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from shared.db.models import KeyBudget


@dataclass(frozen=True)
class KeyBudgetRow:
    id: uuid.UUID
    api_key_id: uuid.UUID
    period_key: str
    cap: Decimal | None  # None: the key is not capped (its tenant's cap applies)
    spent: Decimal
    reserved: Decimal


_COLUMNS = (
    KeyBudget.id,
    KeyBudget.api_key_id,
    KeyBudget.period_key,
    KeyBudget.cap,
    KeyBudget.spent,
    KeyBudget.reserved,
)


def ensure_key_budget(session: Session, key_id: uuid.UUID, key: str, cap: Decimal | None) -> None:
    """Create the key's row of the period on first use; an existing row keeps its own cap."""
    session.execute(
        pg_insert(KeyBudget)
        .values(id=uuid.uuid4(), api_key_id=key_id, period_key=key, cap=cap)
        .on_conflict_do_nothing(index_elements=["api_key_id", "period_key"])
    )


def get_key_budget(session: Session, key_id: uuid.UUID, key: str) -> KeyBudgetRow | None:
    row = session.execute(
        select(*_COLUMNS).where(KeyBudget.api_key_id == key_id, KeyBudget.period_key == key)
    ).one_or_none()
    return None if row is None else KeyBudgetRow(*row)


def key_budgets_of(
    session: Session, periods: dict[uuid.UUID, str]
) -> dict[uuid.UUID, KeyBudgetRow]:
    """Each key's row of the given period (keys without one yet are left out)."""
    if not periods:
        return {}
    pairs = tuple_(KeyBudget.api_key_id, KeyBudget.period_key).in_(list(periods.items()))
    rows = session.execute(select(*_COLUMNS).where(pairs)).all()
    return {row.api_key_id: KeyBudgetRow(*row) for row in rows}


def set_key_cap(session: Session, key_id: uuid.UUID, key: str, cap: Decimal | None) -> None:
    session.execute(
        update(KeyBudget)
        .where(KeyBudget.api_key_id == key_id, KeyBudget.period_key == key)
        .values(cap=cap)
    )


# A key budget's figures against the ledger: spent is what its jobs settled, reserved what
# their open holds are (the entries are the tenant's; a job names its key budget row).
_KEY_LEDGER_CHECKS = text(
    """
    WITH sums AS (
        SELECT k.id, k.api_key_id, k.period_key, k.cap, k.spent, k.reserved,
               COALESCE((SELECT SUM(s.amount) FROM jobs j
                         JOIN ledger_entries s ON s.job_id = j.id AND s.kind = 'settle'
                         WHERE j.key_budget_id = k.id), 0) AS settled,
               COALESCE((SELECT SUM(r.amount) FROM jobs j
                         JOIN ledger_entries r ON r.job_id = j.id AND r.kind = 'reserve'
                         WHERE j.key_budget_id = k.id
                           AND NOT EXISTS (SELECT 1 FROM ledger_entries s
                                           WHERE s.job_id = j.id AND s.kind = 'settle')),
                        0) AS open_holds
        FROM key_budgets k
    )
    SELECT id, api_key_id, period_key, cap, spent, reserved, settled, open_holds
    FROM sums
    WHERE spent <> settled OR reserved <> open_holds OR spent > cap
    """
)


def broken_key_budgets(session: Session) -> list[tuple[object, ...]]:
    return [tuple(row) for row in session.execute(_KEY_LEDGER_CHECKS)]
