"""The webhook outbox's SQL (table ``webhook_deliveries``).

Settlement writes the row in its own transaction (:func:`enqueue` for a finished job,
:func:`enqueue_alerts` for a budget threshold it crossed), so a crash after the commit cannot
lose the webhook; the webhooks service then claims it for one attempt at a time under a
lease (:func:`claim`), so two copies of a message never POST at once, and records the outcome.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.db.models import AlertRecipient, BudgetAlert, Job, Tenant, WebhookDelivery
from shared.jobs.repository import add_event

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
FAILED_TEXT = "delivery failed"


def enqueue(session: Session, job: Job, body: dict[str, Any]) -> uuid.UUID | None:
    """Add the job's webhook to the outbox (once per job); its id, or None if already there."""
    assert job.webhook_url is not None
    return session.scalar(
        insert(WebhookDelivery)
        .values(id=uuid.uuid4(), job_id=job.id, url=job.webhook_url, body=body)
        .on_conflict_do_nothing(index_elements=[WebhookDelivery.job_id])
        .returning(WebhookDelivery.id)
    )


def enqueue_alerts(
    session: Session, rows: list[tuple[uuid.UUID, AlertRecipient, str, dict[str, Any]]]
) -> list[uuid.UUID]:
    """Add alert webhooks, each (alert id, recipient, url, body), in one statement; the ids
    written (an alert has at most one delivery per recipient)."""
    values = [
        {
            "id": uuid.uuid4(),
            "alert_id": alert_id,
            "recipient": recipient.value,
            "url": url,
            "body": body,
        }
        for alert_id, recipient, url, body in rows
    ]
    return list(
        session.scalars(
            insert(WebhookDelivery)
            .values(values)
            .on_conflict_do_nothing(
                index_elements=[WebhookDelivery.alert_id, WebhookDelivery.recipient]
            )
            .returning(WebhookDelivery.id)
        )
    )


@dataclass(frozen=True)
class Claim:
    id: uuid.UUID
    job_id: uuid.UUID | None  # a job's webhook, or
    alert_id: uuid.UUID | None  # a budget alert's
    recipient: AlertRecipient
    url: str
    body: dict[str, Any]
    secret: str | None  # the tenant's; None for the operator's (its secret is a setting)
    attempt: int  # this attempt's number, from 1

    @property
    def subject(self) -> str:
        return f"job {self.job_id}" if self.job_id else f"{self.recipient} alert {self.alert_id}"


def claim(session: Session, delivery_id: uuid.UUID, lease: timedelta) -> Claim | None:
    """Take a pending delivery for one attempt; None when it is done or another holds it."""
    now = func.now()
    row = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.state == PENDING,
            or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now),
        )
        .values(lease_until=now + lease, attempts=WebhookDelivery.attempts + 1)
        .returning(
            WebhookDelivery.job_id,
            WebhookDelivery.alert_id,
            WebhookDelivery.recipient,
            WebhookDelivery.url,
            WebhookDelivery.body,
            WebhookDelivery.attempts,
        )
    ).one_or_none()
    if row is None:
        return None
    job_id, alert_id, recipient = row.job_id, row.alert_id, AlertRecipient(row.recipient)
    secret: str | None = None
    if job_id is not None:
        secret = session.scalar(
            select(Tenant.webhook_secret)
            .join(Job, Job.tenant_id == Tenant.id)
            .where(Job.id == job_id)
        )
    elif recipient is AlertRecipient.TENANT:
        secret = session.scalar(
            select(Tenant.webhook_secret)
            .join(BudgetAlert, BudgetAlert.tenant_id == Tenant.id)
            .where(BudgetAlert.id == alert_id)
        )
    return Claim(delivery_id, job_id, alert_id, recipient, row.url, row.body, secret, row.attempts)


def finish(session: Session, delivery_id: uuid.UUID, state: str) -> None:
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .values(state=state, lease_until=None, finished_at=func.now())
    )


def reschedule(session: Session, delivery_id: uuid.UUID, delay: timedelta) -> None:
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .values(lease_until=None, next_attempt_at=func.now() + delay)
    )


def overdue(session: Session, grace: timedelta, limit: int) -> list[uuid.UUID]:
    """Pending deliveries whose next attempt is ``grace`` overdue and not held: their message
    was lost (a crash between commit and publish, a Redis outage) and must be sent again."""
    now = func.now()
    return list(
        session.scalars(
            select(WebhookDelivery.id)
            .where(
                WebhookDelivery.state == PENDING,
                WebhookDelivery.next_attempt_at < now - grace,
                or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now),
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
        )
    )


def state_of(session: Session, job_id: uuid.UUID) -> tuple[str, int] | None:
    """(state, attempts) of a job's webhook, None when it has none."""
    row = session.execute(
        select(WebhookDelivery.state, WebhookDelivery.attempts).where(
            WebhookDelivery.job_id == job_id
        )
    ).one_or_none()
    return None if row is None else (row[0], row[1])


def record_outcome(session: Session, job_id: uuid.UUID, delivered: bool) -> None:
    """The job's audit learns only whether its webhook arrived: no status code or error text,
    which would turn the audit into a scanner of whatever the URL points at."""
    if delivered:
        add_event(session, job_id, "webhook_delivered", status=None)
    else:
        add_event(session, job_id, "webhook_failed", status=None, data={"message": FAILED_TEXT})
