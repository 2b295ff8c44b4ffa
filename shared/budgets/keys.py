"""A key's spend in its current period: what the admin API and the CLI show beside each key."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from shared.budgets import key_repository as repo
from shared.budgets.periods import period_key
from shared.db.models import ApiKey, Tenant

ZERO = Decimal(0)


@dataclass(frozen=True)
class KeySpend:
    period: str
    cap: Decimal | None  # None: the key has no cap of its own
    spent: Decimal
    reserved: Decimal


def key_spend(
    session: Session, tenant: Tenant, keys: Sequence[ApiKey], now: datetime | None = None
) -> dict[uuid.UUID, KeySpend]:
    """Each of the tenant's ``keys`` in its current period (its own period kind, else the
    tenant's), read in one statement; a key without a row yet has spent nothing."""
    periods = {k.id: period_key(k.budget_period or tenant.budget_period, now) for k in keys}
    rows = repo.key_budgets_of(session, periods)
    spend = {}
    for key in keys:
        row = rows.get(key.id)
        spend[key.id] = KeySpend(
            period=periods[key.id],
            cap=key.budget_cap,
            spent=row.spent if row else ZERO,
            reserved=row.reserved if row else ZERO,
        )
    return spend
