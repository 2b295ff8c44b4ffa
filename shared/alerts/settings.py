"""Where budget alerts go besides the tenant: the operator's receiver (read by whichever process
settles, which writes the alert's webhooks, and by the webhooks worker, which signs them)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, model_validator

from shared.settings import CommonSettings


class AlertSettings(CommonSettings):
    operator_alert_url: str | None = Field(
        None,
        description="Every tenant's budget alerts are also POSTed here, signed with "
        "operator_alert_secret (unset: only tenants with an alert_url are told). A private "
        "address must be opened with TANDEM_EGRESS_ALLOW_HOSTS like any other destination.",
    )
    operator_alert_secret: str | None = Field(
        None, description="Signs the operator's alert webhooks (required with the URL)."
    )

    @model_validator(mode="after")
    def check_secret(self) -> AlertSettings:
        if self.operator_alert_url and not self.operator_alert_secret:
            raise ValueError("TANDEM_OPERATOR_ALERT_URL needs TANDEM_OPERATOR_ALERT_SECRET")
        return self


@lru_cache
def get_alert_settings() -> AlertSettings:
    return AlertSettings()
