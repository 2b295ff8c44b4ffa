"""Webhook delivery knobs (read by whichever process delivers: the webhooks worker)."""

from __future__ import annotations

from pydantic import Field

from shared.settings import CommonSettings


class WebhookSettings(CommonSettings):
    webhook_attempts: int = Field(5, ge=1, description="Delivery attempts of one webhook.")
    webhook_backoff_s: float = Field(
        1.0, description="Delay before the second attempt of a webhook; doubles per attempt."
    )
    webhook_backoff_max_s: float = Field(30.0, description="Longest delay between attempts.")
    webhook_timeout_s: float = Field(10.0, description="Timeout of one webhook POST.")
    webhook_relay_grace_s: float = Field(
        60.0,
        description="A pending webhook this many seconds past its next attempt has lost its "
        "message; the relay (beat, every webhook_relay_interval_s) sends it again.",
    )
    webhook_relay_interval_s: float = Field(30.0, description="How often the relay runs.")
