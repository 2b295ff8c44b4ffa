"""Webhook delivery knobs (read by whichever process delivers: the accounting worker)."""

from __future__ import annotations

from pydantic import Field

from shared.settings import CommonSettings


class WebhookSettings(CommonSettings):
    webhook_attempts: int = Field(5, description="Delivery attempts of one webhook.")
    webhook_backoff_s: float = Field(
        1.0, description="First retry delay of a webhook; doubles per attempt."
    )
    webhook_backoff_max_s: float = Field(30.0, description="Longest delay between attempts.")
    webhook_timeout_s: float = Field(10.0, description="Timeout of one webhook POST.")
