"""Response bodies of the alert routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from shared.db.models import AlertThreshold
from shared.money import PlainDecimal

DeliveryState = Literal["pending", "delivered", "failed"]


class AlertOut(BaseModel):
    id: uuid.UUID = Field(description="Also the id in the webhook's body: deduplicate by it.")
    key_id: uuid.UUID | None = Field(
        description="A capped API key whose own budget crossed it; null: the tenant's budget."
    )
    key_prefix: str | None
    period: str = Field(description="The budget period: 2026-11, 2026-11-28 or total.")
    threshold: AlertThreshold
    ratio: PlainDecimal = Field(description="The threshold as a share of the cap.")
    cap: PlainDecimal
    spent: PlainDecimal = Field(description="Spent right after the crossing settlement.")
    job_id: uuid.UUID | None = Field(description="The job whose settlement crossed it.")
    created_at: datetime
    delivery: DeliveryState | None = Field(
        description="The webhook to the tenant's alert_url (null: no alert_url then)."
    )


class AlertList(BaseModel):
    data: list[AlertOut]


class AdminAlertOut(AlertOut):
    tenant_id: uuid.UUID
    tenant_name: str
    operator_delivery: DeliveryState | None = Field(
        description="The webhook to TANDEM_OPERATOR_ALERT_URL (null: none was set then)."
    )


class AdminAlertList(BaseModel):
    data: list[AdminAlertOut]
