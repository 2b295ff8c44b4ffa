"""SQL of the shadow runs: the operator's account, and what a shadow run copies of its job."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.db.models import BudgetPeriod, Job, Tenant


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


@dataclass(frozen=True)
class Prompt:
    """What a shadow run repeats of its job: the question as prompted, at the job's prices."""

    question: str
    prompt_version: str
    prices: dict[str, Any] | None


def prompt_of(session: Session, job_id: uuid.UUID) -> Prompt:
    """One statement for the columns a settlement's lock leaves unloaded."""
    row = session.execute(
        select(Job.question, Job.prompt_version, Job.prices).where(Job.id == job_id)
    ).one()
    return Prompt(row.question, row.prompt_version, row.prices)
