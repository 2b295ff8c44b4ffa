"""Budget alerts: thresholds crossed, recorded once per period and sent as signed webhooks
through the webhook outbox (:mod:`shared.alerts.service`)."""

from shared.alerts.repository import AlertRow
from shared.alerts.service import EVENT_TYPE, announce, list_alerts, payload
from shared.alerts.settings import AlertSettings, get_alert_settings

__all__ = [
    "EVENT_TYPE",
    "AlertRow",
    "AlertSettings",
    "announce",
    "get_alert_settings",
    "list_alerts",
    "payload",
]
