"""Signed completion webhooks; accounting calls :func:`deliver_webhook` after settlement."""

from shared.webhooks.delivery import (
    EVENT_HEADER,
    SIGNATURE_HEADER,
    Delivery,
    deliver_webhook,
    payload,
    post_signed,
    sign,
    verify_signature,
)
from shared.webhooks.settings import WebhookSettings

__all__ = [
    "EVENT_HEADER",
    "SIGNATURE_HEADER",
    "Delivery",
    "WebhookSettings",
    "deliver_webhook",
    "payload",
    "post_signed",
    "sign",
    "verify_signature",
]
