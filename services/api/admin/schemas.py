"""Bodies of the tenant and key management routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from services.api.validation import StorableText
from shared.db.models import BudgetPeriod
from shared.money import Amount, PlainDecimal

ALERT_URL_HELP = (
    "Budget alerts (thresholds crossed) are POSTed here, signed with the webhook secret; "
    "a public http(s) URL."
)


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: StorableText = Field(..., min_length=1, max_length=200)
    budget_cap: Amount = Field(Decimal(0), ge=0, le=Decimal(1_000_000_000))
    budget_period: BudgetPeriod = BudgetPeriod.MONTHLY
    soft_alert_ratio: Amount = Field(Decimal("0.8"), gt=0, le=1)
    hard_alert_ratio: Amount = Field(Decimal(1), gt=0, le=1)
    alert_url: str | None = Field(None, max_length=2048, description=ALERT_URL_HELP)
    max_cost_per_request: Amount | None = Field(None, gt=0, le=Decimal(1_000_000_000))
    rate_limit_rpm: StrictInt | None = Field(None, gt=0, le=1_000_000)
    max_concurrent_jobs: StrictInt | None = Field(None, gt=0, le=1_000_000)


class TenantUpdate(BaseModel):
    """Only the fields sent change; ``null`` removes a limit (the alert URL, the per-request
    maximum, the rate and concurrent-jobs limits) and is refused for the rest."""

    model_config = ConfigDict(extra="forbid")

    budget_cap: Amount | None = Field(None, ge=0, le=Decimal(1_000_000_000))
    budget_period: BudgetPeriod | None = None
    soft_alert_ratio: Amount | None = Field(None, gt=0, le=1)
    hard_alert_ratio: Amount | None = Field(None, gt=0, le=1)
    alert_url: str | None = Field(
        None, max_length=2048, description=ALERT_URL_HELP + " An empty string removes it."
    )
    max_cost_per_request: Amount | None = Field(None, gt=0, le=Decimal(1_000_000_000))
    rate_limit_rpm: StrictInt | None = Field(None, gt=0, le=1_000_000)
    max_concurrent_jobs: StrictInt | None = Field(None, gt=0, le=1_000_000)
    active: StrictBool | None = None


class BudgetOut(BaseModel):
    period: str
    cap: PlainDecimal
    spent: PlainDecimal
    reserved: PlainDecimal


class TenantOut(BaseModel):
    id: uuid.UUID
    name: str
    active: bool
    budget_cap: PlainDecimal
    budget_period: BudgetPeriod
    soft_alert_ratio: PlainDecimal
    hard_alert_ratio: PlainDecimal
    alert_url: str | None
    max_cost_per_request: PlainDecimal | None
    rate_limit_rpm: int | None
    max_concurrent_jobs: int | None
    created_at: datetime
    budget: BudgetOut | None = None


class TenantCreated(TenantOut):
    webhook_secret: str = Field(description="Signs this tenant's webhooks; shown once.")


KEY_CAP_HELP = "The key's own budget cap per period, at most its tenant's; null: none."


class KeyLimits(BaseModel):
    """A key's own limits, within its tenant's."""

    model_config = ConfigDict(extra="forbid")

    budget_cap: Amount | None = Field(
        None, ge=0, le=Decimal(1_000_000_000), description=KEY_CAP_HELP
    )
    budget_period: BudgetPeriod | None = Field(
        None, description="The period the key's cap is per; null: its tenant's."
    )
    expires_at: datetime | None = Field(
        None, description="With a time zone; from then on the key is refused (401 key_expired)."
    )
    rate_limit_rpm: StrictInt | None = Field(
        None, gt=0, le=1_000_000, description="The key's own requests per minute."
    )
    soft_alert_ratio: Amount | None = Field(
        None, gt=0, le=1, description="Alert threshold of the key's cap; null: its tenant's."
    )
    hard_alert_ratio: Amount | None = Field(
        None, gt=0, le=1, description="Second threshold (1: cap spent); null: its tenant's."
    )


class KeyCreate(KeyLimits):
    name: StorableText = Field("", max_length=200)


class KeyUpdate(KeyLimits):
    """Only the fields sent change; ``null`` clears a limit."""


class KeySpendOut(BaseModel):
    period: str
    cap: PlainDecimal | None
    spent: PlainDecimal
    reserved: PlainDecimal


class KeyOut(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    budget_cap: PlainDecimal | None
    budget_period: BudgetPeriod | None
    expires_at: datetime | None
    rate_limit_rpm: int | None
    soft_alert_ratio: PlainDecimal | None
    hard_alert_ratio: PlainDecimal | None
    spend: KeySpendOut | None = Field(None, description="The key's current period.")


class KeyCreated(KeyOut):
    key: str = Field(description="The full key: shown once, never retrievable again.")


class PriceCreate(BaseModel):
    """A model's new prices per million tokens, from ``effective_from`` (default: now) on."""

    model_config = ConfigDict(extra="forbid")

    model: StorableText = Field(..., min_length=1, max_length=200)
    prompt_per_mtok: Amount
    generated_per_mtok: Amount
    cached_prompt_per_mtok: Amount | None = Field(
        None, description="Prompt tokens served from the engine's prefix cache; default: prompt."
    )
    effective_from: datetime | None = Field(
        None, description="With a time zone; may lie in the past or the future. Default: now."
    )
    new_model: StrictBool = Field(
        False, description="Price a model no engine is configured with yet (no typo check)."
    )


class PriceOut(BaseModel):
    id: uuid.UUID
    model: str
    prompt_per_mtok: PlainDecimal
    generated_per_mtok: PlainDecimal
    cached_prompt_per_mtok: PlainDecimal
    effective_from: datetime
    source: str = Field(description="`environment` (seeded) or `admin`.")
    created_at: datetime
    in_force: bool = Field(description="Whether this is the model's price now.")
