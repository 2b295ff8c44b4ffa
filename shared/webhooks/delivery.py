"""Completion webhooks: the job's result POSTed to its ``webhook_url``, signed and retried.

The body is signed with HMAC-SHA256 under the tenant's webhook secret; the receiver recomputes
``sha256=<hex>`` over the raw body and compares it to ``X-Tandem-Signature`` in constant time.
The body carries a timestamp and the job id so a receiver can refuse replays. Accounting calls
:func:`deliver_webhook` after settlement; a delivery that still fails after its retries is
recorded as a job event and does not fail the job.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import insert, select

from shared.db.models import Job, JobEvent, Tenant
from shared.db.session import unit_of_work
from shared.webhooks.settings import WebhookSettings

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Tandem-Signature"
EVENT_HEADER = "X-Tandem-Event"


@dataclass(frozen=True)
class Delivery:
    delivered: bool
    attempts: int
    status_code: int | None = None
    error: str | None = None


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, body), signature)


def payload(job: Job) -> dict[str, Any]:
    return {
        "type": "job.finished",
        "sent_at": datetime.now(UTC).isoformat(),
        "job": {
            "id": str(job.id),
            "status": job.status,
            "domain": job.domain,
            "policy": job.policy,
            "answer": job.answer,
            "truncation_level": job.truncation_level,
            "termination_reason": job.termination_reason,
            "cost": str(job.cost),
            "error": {"code": job.error_code, "message": job.error_message}
            if job.error_code
            else None,
            "metadata": job.job_metadata,
            "url": f"/v1/jobs/{job.id}",
        },
    }


def post_signed(
    url: str,
    secret: str,
    data: dict[str, Any],
    settings: WebhookSettings,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """POST with bounded, exponentially backed-off retries on network errors and 5xx/429."""
    body = json.dumps(data, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body),
        EVENT_HEADER: str(data.get("type", "")),
    }
    error: str | None = None
    status: int | None = None
    with httpx.Client(timeout=settings.webhook_timeout_s, follow_redirects=False) as client:
        for attempt in range(1, settings.webhook_attempts + 1):
            try:
                response = client.post(url, content=body, headers=headers)
                status = response.status_code
                if 200 <= status < 300:
                    return Delivery(True, attempt, status)
                error = f"HTTP {status}"
                if status < 500 and status != 429:
                    return Delivery(False, attempt, status, error)  # the receiver refused it
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            if attempt < settings.webhook_attempts:
                sleep(
                    min(
                        settings.webhook_backoff_s * 2 ** (attempt - 1),
                        settings.webhook_backoff_max_s,
                    )
                )
    return Delivery(False, settings.webhook_attempts, status, error)


def deliver_webhook(
    job_id: uuid.UUID | str,
    *,
    settings: WebhookSettings | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery | None:
    """Deliver the finished job's webhook, if it has one; records the outcome as a job event.

    Runs outside any transaction (it may wait on retries): call it after settlement commits.
    """
    settings = settings or WebhookSettings()
    job_id = uuid.UUID(str(job_id))
    with unit_of_work(settings.database_url) as session:
        row = session.execute(
            select(Job, Tenant.webhook_secret)
            .join(Tenant, Tenant.id == Job.tenant_id)
            .where(Job.id == job_id)
        ).one_or_none()
        if row is None or not row[0].webhook_url:
            return None
        job, secret = row
        url, data = job.webhook_url, payload(job)
    assert url is not None
    delivery = post_signed(url, secret, data, settings, sleep)
    if not delivery.delivered:
        log.warning("webhook of job %s not delivered: %s", job_id, delivery.error)
    with unit_of_work(settings.database_url) as session:
        session.execute(
            insert(JobEvent).values(
                job_id=job_id,
                kind="webhook_delivered" if delivery.delivered else "webhook_failed",
                data={
                    "attempts": delivery.attempts,
                    "status_code": delivery.status_code,
                    "error": delivery.error,
                },
            )
        )
    return delivery
