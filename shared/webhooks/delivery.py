"""Completion webhooks: the job's result POSTed to its ``webhook_url``, signed, at least once.

The body is signed with HMAC-SHA256 under the tenant's webhook secret; the receiver recomputes
``sha256=<hex>`` over the raw body and compares it to ``X-Tandem-Signature`` in constant time.
The body carries a timestamp and the job id so a receiver can refuse replays (and a duplicate:
delivery is at least once).

Budget alerts (:mod:`shared.alerts`) take the same way, to the tenant's ``alert_url`` under the
same secret and to the operator's URL under the operator's.

Settlement writes the webhook to the outbox in its own transaction (:func:`outbox_task`) and
the webhooks service sends it (:func:`deliver`), one attempt per task: a failed attempt is
re-scheduled with a backoff (a countdown, never a sleep in a worker), so a dead receiver holds
no worker any longer than one timed-out POST and never holds up another tenant's job. The
relay (:func:`relay`) re-sends deliveries whose message was lost. Every connection goes
through the egress policy (:mod:`shared.egress`).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.orm import Session

from shared.alerts.settings import get_alert_settings
from shared.db.models import Job
from shared.db.session import unit_of_work
from shared.egress import EgressBlocked, EgressSettings, EgressTransport, get_egress_settings
from shared.jobs.flow import NextTask
from shared.money import plain
from shared.tasks import TaskName
from shared.webhooks import outbox
from shared.webhooks.settings import WebhookSettings

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Tandem-Signature"
EVENT_HEADER = "X-Tandem-Event"


@dataclass(frozen=True)
class Attempt:
    delivered: bool
    retryable: bool  # a network error, 5xx or 429: worth another attempt
    status_code: int | None = None
    error: str | None = None  # for the operator's log only, never the tenant's audit


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, body), signature)


def payload(job: Job) -> dict[str, Any]:
    """What the receiver is told about the finished job (``sent_at`` is added per attempt)."""
    return {
        "type": "job.finished",
        "job": {
            "id": str(job.id),
            "status": job.status,
            "domain": job.domain,
            "policy": job.policy,
            "answer": job.answer,
            "truncation_level": job.truncation_level,
            "termination_reason": job.termination_reason,
            "cost": plain(job.cost),
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
    egress: EgressSettings | None = None,
) -> Attempt:
    """One signed POST through the egress policy; the response body is never read."""
    body = json.dumps(
        {**data, "sent_at": datetime.now(UTC).isoformat()}, separators=(",", ":")
    ).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body),
        EVENT_HEADER: str(data.get("type", "")),
    }
    client = _client(
        settings.webhook_timeout_s, tuple((egress or get_egress_settings()).egress_allow_hosts)
    )
    try:
        with client.stream("POST", url, content=body, headers=headers) as response:
            status = response.status_code
    except EgressBlocked as error:
        return Attempt(False, False, error=f"refused by the egress policy: {error}")
    except httpx.InvalidURL as error:
        return Attempt(False, False, error=f"not a URL httpx can send to: {error}")
    except httpx.HTTPError as error:
        return Attempt(False, True, error=f"{type(error).__name__}: {error}")
    if 200 <= status < 300:
        return Attempt(True, False, status)
    return Attempt(False, status >= 500 or status == 429, status, f"HTTP {status}")


@functools.lru_cache(maxsize=8)
def _client(timeout_s: float, allow_hosts: tuple[str, ...]) -> httpx.Client:
    """One client per process (and policy): its TLS context is built once. No connection is
    kept for a later POST: the transport connects to an address, so a kept connection could
    serve another host name at that address under the first one's certificate. Redirects are
    not followed: a receiver could point them anywhere."""
    egress = EgressSettings(egress_allow_hosts=list(allow_hosts))
    return httpx.Client(
        transport=EgressTransport(
            settings=egress, limits=httpx.Limits(max_keepalive_connections=0)
        ),
        timeout=timeout_s,
        follow_redirects=False,
    )


def outbox_task(session: Session, job: Job) -> list[NextTask]:
    """Write a finished job's webhook to the outbox inside the caller's (settlement)
    transaction; the task to publish after its commit (none without a URL or when already
    written)."""
    if not job.webhook_url:
        return []
    delivery_id = outbox.enqueue(session, job, payload(job))
    if delivery_id is None:
        return []
    return [deliver_task(delivery_id)]


def deliver_task(delivery_id: uuid.UUID) -> NextTask:
    return NextTask(TaskName.WEBHOOKS_DELIVER, {"delivery_id": str(delivery_id)})


def backoff_s(attempt: int, settings: WebhookSettings) -> float:
    return float(
        min(settings.webhook_backoff_s * 2 ** (attempt - 1), settings.webhook_backoff_max_s)
    )


def lease(settings: WebhookSettings) -> timedelta:
    # httpx's timeout bounds each phase (connect, write, read), so one POST can take a few.
    return timedelta(seconds=4 * settings.webhook_timeout_s + 30)


def deliver(
    delivery_id: uuid.UUID | str,
    settings: WebhookSettings | None = None,
    egress: EgressSettings | None = None,
) -> float | None:
    """One delivery attempt; the countdown in seconds before the next one, or None when the
    delivery is finished (delivered, given up, or in another worker's hands)."""
    settings = settings or WebhookSettings()
    delivery_id = uuid.UUID(str(delivery_id))
    with unit_of_work() as session:
        claimed = outbox.claim(session, delivery_id, lease(settings))
    if claimed is None:
        return None
    secret = claimed.secret or get_alert_settings().operator_alert_secret
    if claimed.attempt > settings.webhook_attempts:
        # Only reached when earlier attempts crashed their worker before recording an outcome.
        attempt = Attempt(False, False, error="attempts exhausted")
    elif secret is None:
        attempt = Attempt(False, False, error="TANDEM_OPERATOR_ALERT_SECRET is not set here")
    else:
        attempt = post_signed(claimed.url, secret, claimed.body, settings, egress)
    retry = attempt.retryable and claimed.attempt < settings.webhook_attempts
    if not attempt.delivered:
        log.warning(
            "webhook of %s to %s not delivered (attempt %d of %d%s): %s",
            claimed.subject,
            claimed.url,
            claimed.attempt,
            settings.webhook_attempts,
            ", will retry" if retry else "",
            attempt.error,
        )
    with unit_of_work() as session:
        if retry:
            delay = backoff_s(claimed.attempt, settings)
            outbox.reschedule(session, delivery_id, timedelta(seconds=delay))
            return delay
        outbox.finish(
            session, delivery_id, outbox.DELIVERED if attempt.delivered else outbox.FAILED
        )
        if claimed.job_id is not None:  # an alert's outcome is its delivery's state
            outbox.record_outcome(session, claimed.job_id, attempt.delivered)
    return None


def relay(settings: WebhookSettings | None = None) -> list[NextTask]:
    """Deliveries whose message was lost, to be sent again (the beat runs this)."""
    settings = settings or WebhookSettings()
    with unit_of_work() as session:
        ids = outbox.overdue(session, timedelta(seconds=settings.webhook_relay_grace_s), 100)
    if ids:
        log.warning("relaying %d webhook deliveries whose message was lost", len(ids))
    return [deliver_task(delivery_id) for delivery_id in ids]
