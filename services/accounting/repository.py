"""SQL of the shadow runs: the operator's account (what a shadow run copies of its job is
:func:`shared.jobs.repository.prompt_of`)."""

from __future__ import annotations

import secrets
import uuid
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.db.models import BudgetPeriod, Tenant


def operator_account(session: Session, name: str, cap: Decimal) -> Tenant:
    """The tenant shadow runs are charged to, made on first use: inactive, so no API key
    authenticates as it, and monthly, like the operator's bills. One statement once it exists;
    two settlements making it at once both get the one row (the insert does nothing on the
    name's conflict)."""
    by_name = select(Tenant).where(Tenant.name == name)
    tenant = session.scalars(by_name).first()
    if tenant is not None:
        return tenant
    session.execute(
        insert(Tenant)
        .values(
            id=uuid.uuid4(),
            name=name,
            active=False,
            budget_period=BudgetPeriod.MONTHLY.value,
            budget_cap=cap,
            webhook_secret=secrets.token_urlsafe(32),
        )
        .on_conflict_do_nothing(index_elements=["name"])
    )
    return session.scalars(by_name).one()
