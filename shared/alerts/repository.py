"""The budget alerts' SQL for reading (the alerts are written by the settlement statement,
:func:`shared.budgets.repository.apply_settlement`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import ScalarSelect

from shared.db.models import AlertRecipient, ApiKey, BudgetAlert, Tenant, WebhookDelivery


@dataclass(frozen=True)
class Recipients:
    """What the webhooks of a settlement's new alerts need besides the alerts themselves."""

    tenant_name: str
    alert_url: str | None
    key_prefixes: dict[uuid.UUID, str]  # alert id -> the prefix of its key (key budgets only)


# Only when a settlement crossed something: its job's audit events, and the tenant's (and
# keys') names and the tenant's alert URL, in one statement.
_RECORD_CROSSED = text(
    """
    WITH events AS (
        INSERT INTO job_events (job_id, kind, data)
        SELECT a.job_id, 'budget_alert',
               jsonb_build_object('alert_id', a.id, 'api_key_id', a.api_key_id,
                                  'threshold', a.threshold, 'ratio', trim_scale(a.ratio)::text,
                                  'period', a.period_key, 'cap', trim_scale(a.cap)::text,
                                  'spent', trim_scale(a.spent)::text)
        FROM budget_alerts a WHERE a.id = ANY(:ids) AND a.job_id IS NOT NULL
    )
    SELECT a.id, t.name, t.alert_url, k.prefix
    FROM budget_alerts a
    JOIN tenants t ON t.id = a.tenant_id
    LEFT JOIN api_keys k ON k.id = a.api_key_id
    WHERE a.id = ANY(:ids)
    """
)


def record_crossed(session: Session, alert_ids: list[uuid.UUID]) -> Recipients:
    """The ``budget_alert`` event of each new alert's job, and where its webhooks go."""
    rows = session.execute(_RECORD_CROSSED, {"ids": alert_ids}).all()
    return Recipients(
        tenant_name=rows[0].name,
        alert_url=rows[0].alert_url,
        key_prefixes={row.id: row.prefix for row in rows if row.prefix is not None},
    )


@dataclass(frozen=True)
class AlertRow:
    id: uuid.UUID
    tenant_id: uuid.UUID
    tenant_name: str
    key_id: uuid.UUID | None  # a capped key's own budget; None: the tenant's
    key_prefix: str | None
    job_id: uuid.UUID | None
    period_key: str
    threshold: str
    ratio: Decimal
    cap: Decimal
    spent: Decimal
    created_at: datetime
    tenant_delivery: str | None  # state of the webhook to the tenant's alert_url, if any
    operator_delivery: str | None  # and to the operator's URL


def _delivery_state(recipient: AlertRecipient) -> ScalarSelect[str]:
    return (
        select(WebhookDelivery.state)
        .where(WebhookDelivery.alert_id == BudgetAlert.id, WebhookDelivery.recipient == recipient)
        .scalar_subquery()
    )


def alerts(session: Session, tenant_id: uuid.UUID | None, limit: int) -> list[AlertRow]:
    """The newest ``limit`` alerts, of one tenant or of all (each through its own index)."""
    query = (
        select(
            BudgetAlert.id,
            BudgetAlert.tenant_id,
            Tenant.name,
            BudgetAlert.api_key_id,
            ApiKey.prefix,
            BudgetAlert.job_id,
            BudgetAlert.period_key,
            BudgetAlert.threshold,
            BudgetAlert.ratio,
            BudgetAlert.cap,
            BudgetAlert.spent,
            BudgetAlert.created_at,
            _delivery_state(AlertRecipient.TENANT),
            _delivery_state(AlertRecipient.OPERATOR),
        )
        .join(Tenant, Tenant.id == BudgetAlert.tenant_id)
        .outerjoin(ApiKey, ApiKey.id == BudgetAlert.api_key_id)
        .order_by(BudgetAlert.created_at.desc(), BudgetAlert.id.desc())
        .limit(limit)
    )
    if tenant_id is not None:
        query = query.where(BudgetAlert.tenant_id == tenant_id)
    return [AlertRow(*tuple(row)) for row in session.execute(query)]
