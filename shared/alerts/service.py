"""Budget alerts: a soft or hard threshold of a tenant's budget crossed in a period.

The subject is the tenant's budget or a capped key's (``key_budgets``), each with a soft and a
hard ratio of its cap (a key's own, else its tenant's). Settlement decides them in the
statement that moves the money (:func:`shared.budgets.repository.apply_settlement`): each
(budget period, threshold) gets at most one alert row, however many settlements cross it at
once. The same transaction records them in the job's audit and writes their webhooks to the
outbox (:func:`announce`): one to the tenant's ``alert_url``, signed with its webhook secret,
and one to the operator's ``TANDEM_OPERATOR_ALERT_URL``, signed with
``TANDEM_OPERATOR_ALERT_SECRET``. The webhooks service delivers them at least once, like a
job's webhook, so a receiver deduplicates by the alert's id.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from shared.alerts import repository as repo
from shared.alerts.settings import AlertSettings
from shared.db.models import AlertRecipient
from shared.money import plain
from shared.webhooks import outbox

if TYPE_CHECKING:
    from shared.budgets.repository import SettledBudget

log = logging.getLogger(__name__)

EVENT_TYPE = "budget.threshold_crossed"


def payload(
    alert_id: uuid.UUID,
    *,
    tenant_id: uuid.UUID,
    tenant_name: str,
    key_id: uuid.UUID | None,
    key_prefix: str | None,
    job_id: uuid.UUID | None,
    period: str,
    threshold: str,
    ratio: Decimal,
    cap: Decimal,
    spent: Decimal,
    crossed_at: datetime,
) -> dict[str, Any]:
    """What a receiver is told (``sent_at`` is added per attempt). ``key`` is null for the
    tenant's budget, else the capped key whose own budget crossed the threshold."""
    return {
        "type": EVENT_TYPE,
        "alert": {
            "id": str(alert_id),
            "tenant": {"id": str(tenant_id), "name": tenant_name},
            "key": {"id": str(key_id), "prefix": key_prefix} if key_id else None,
            "period": period,
            "threshold": threshold,
            "ratio": plain(ratio),
            "cap": plain(cap),
            "spent": plain(spent),
            "job_id": str(job_id) if job_id else None,
            "crossed_at": crossed_at.isoformat(),
        },
    }


def announce(
    session: Session, settled: SettledBudget, settings: AlertSettings, job_id: uuid.UUID
) -> list[uuid.UUID]:
    """Record the alerts ``settled`` crossed in the job's audit and write their webhooks to the
    outbox (the caller's transaction); the delivery ids to publish after its commit."""
    recipients = repo.record_crossed(session, [alert.id for alert in settled.crossed])
    rows: list[tuple[uuid.UUID, AlertRecipient, str, dict[str, Any]]] = []
    for alert in settled.crossed:
        key_prefix = recipients.key_prefixes.get(alert.id)
        log.warning(
            "tenant %s%s crossed its %s threshold (%s of its %s budget %s)",
            settled.tenant_id,
            f" key {key_prefix}" if key_prefix else "",
            alert.threshold,
            plain(alert.ratio),
            plain(alert.cap),
            alert.period_key,
        )
        body = payload(
            alert.id,
            tenant_id=settled.tenant_id,
            tenant_name=recipients.tenant_name,
            key_id=alert.key_id,
            key_prefix=key_prefix,
            job_id=job_id,
            period=alert.period_key,
            threshold=alert.threshold,
            ratio=alert.ratio,
            cap=alert.cap,
            spent=alert.spent,
            crossed_at=alert.created_at,
        )
        if recipients.alert_url:
            rows.append((alert.id, AlertRecipient.TENANT, recipients.alert_url, body))
        if settings.operator_alert_url:
            rows.append((alert.id, AlertRecipient.OPERATOR, settings.operator_alert_url, body))
    return outbox.enqueue_alerts(session, rows) if rows else []


def list_alerts(
    session: Session, tenant_id: uuid.UUID | None = None, limit: int = 50
) -> list[repo.AlertRow]:
    return repo.alerts(session, tenant_id, limit)
