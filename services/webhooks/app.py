"""Celery app of the webhooks service: registers only its own tasks. Its relay runs on the one
beat (``tandem beat``), next to the accounting sweeper."""

from __future__ import annotations

from typing import Any

from shared.celery_base import make_celery
from shared.tasks import Queue, TaskName
from shared.webhooks import WebhookSettings

app = make_celery("tandem-webhooks", queue=Queue.WEBHOOKS, include=["services.webhooks.tasks"])


def beat_schedule() -> dict[str, dict[str, Any]]:
    interval = WebhookSettings().webhook_relay_interval_s
    return {
        "relay-lost-webhooks": {
            "task": TaskName.WEBHOOKS_RELAY.value,
            "schedule": interval,
            "options": {"queue": Queue.WEBHOOKS.value, "expires": interval},
        }
    }
