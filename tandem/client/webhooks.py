"""Checking a completion webhook before trusting it.

The API signs the raw body with HMAC-SHA256 under the tenant's webhook secret and sends
``X-Tandem-Signature: sha256=<hex>``; the body carries ``sent_at``, so a receiver can also
refuse a replay of an old delivery. Delivery is at least once: the job id tells duplicates.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from shared.webhooks import SIGNATURE_HEADER, verify_signature
from tandem.client.errors import InvalidSignature

__all__ = ["SIGNATURE_HEADER", "verify_webhook"]


def verify_webhook(
    secret: str,
    body: bytes,
    signature: str | None,
    *,
    tolerance_s: float | None = 300.0,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The webhook's payload, once its signature (the ``X-Tandem-Signature`` header) matches
    the raw ``body`` and, unless ``tolerance_s`` is None, it was sent at most that long ago."""
    if not signature or not verify_signature(secret, body, signature):
        raise InvalidSignature("the signature does not match the body under this secret")
    payload: dict[str, Any] = json.loads(body)
    if tolerance_s is not None:
        try:
            sent = datetime.fromisoformat(str(payload["sent_at"]))
        except (KeyError, ValueError) as exc:
            raise InvalidSignature("the webhook has no valid sent_at") from exc
        age = ((now or datetime.now(UTC)) - sent).total_seconds()
        if abs(age) > tolerance_s:
            raise InvalidSignature(f"the webhook was sent {age:.0f} s ago; refusing a replay")
    return payload
