"""Alert listings over one unit of work each; the SQL is :mod:`shared.alerts`."""

from __future__ import annotations

import uuid

from services.api.alerts.schemas import AdminAlertList, AdminAlertOut, AlertList, AlertOut
from services.api.db import unit_of_work
from services.api.settings import ApiSettings
from shared import alerts
from shared.alerts import AlertRow


def _fields(row: AlertRow) -> dict[str, object]:
    return {
        "id": row.id,
        "key_id": row.key_id,
        "key_prefix": row.key_prefix,
        "period": row.period_key,
        "threshold": row.threshold,
        "ratio": row.ratio,
        "cap": row.cap,
        "spent": row.spent,
        "job_id": row.job_id,
        "created_at": row.created_at,
        "delivery": row.tenant_delivery,
    }


def tenant_alerts(settings: ApiSettings, tenant_id: uuid.UUID, limit: int) -> AlertList:
    with unit_of_work(settings) as session:
        rows = alerts.list_alerts(session, tenant_id, limit)
    return AlertList(data=[AlertOut.model_validate(_fields(row)) for row in rows])


def all_alerts(settings: ApiSettings, tenant_id: uuid.UUID | None, limit: int) -> AdminAlertList:
    with unit_of_work(settings) as session:
        rows = alerts.list_alerts(session, tenant_id, limit)
    return AdminAlertList(
        data=[
            AdminAlertOut.model_validate(
                {
                    **_fields(row),
                    "tenant_id": row.tenant_id,
                    "tenant_name": row.tenant_name,
                    "operator_delivery": row.operator_delivery,
                }
            )
            for row in rows
        ]
    )
