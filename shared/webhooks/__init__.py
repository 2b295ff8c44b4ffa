"""Signed completion webhooks, written to an outbox at settlement and delivered at least once
by the webhooks service (:mod:`services.webhooks`)."""

from shared.webhooks.delivery import (
    EVENT_HEADER,
    SIGNATURE_HEADER,
    Attempt,
    deliver,
    deliver_task,
    outbox_task,
    payload,
    post_signed,
    relay,
    sign,
    verify_signature,
)
from shared.webhooks.settings import WebhookSettings

__all__ = [
    "EVENT_HEADER",
    "SIGNATURE_HEADER",
    "Attempt",
    "WebhookSettings",
    "deliver",
    "deliver_task",
    "outbox_task",
    "payload",
    "post_signed",
    "relay",
    "sign",
    "verify_signature",
]
