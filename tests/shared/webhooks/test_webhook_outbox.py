"""The webhook outbox: written at settlement, delivered at least once, one attempt per task,
through the egress policy, with nothing but "delivery failed" in the tenant's audit."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from services.accounting.service import settle_job
from shared.db.models import JobEvent, WebhookDelivery
from shared.db.session import unit_of_work
from shared.egress import EgressSettings
from shared.tasks import TaskName
from shared.webhooks import (
    SIGNATURE_HEADER,
    WebhookSettings,
    deliver,
    outbox,
    relay,
    verify_signature,
)
from tests.shared.webhooks.conftest import LOOPBACK_ALLOWED, Receiver, settling_job

pytestmark = pytest.mark.usefixtures("database_url")

FAST = WebhookSettings(webhook_attempts=3, webhook_backoff_s=0.5, webhook_timeout_s=2)


def webhook_events(job_id: uuid.UUID) -> list[tuple[str, dict[str, object]]]:
    with unit_of_work() as session:
        rows = session.execute(
            select(JobEvent.kind, JobEvent.data)
            .where(JobEvent.job_id == job_id, JobEvent.kind.like("webhook%"))
            .order_by(JobEvent.id)
        )
        return [(kind, data) for kind, data in rows]


def delivery_of(job_id: uuid.UUID) -> uuid.UUID:
    with unit_of_work() as session:
        found = session.scalar(select(WebhookDelivery.id).where(WebhookDelivery.job_id == job_id))
    assert found is not None
    return found


def test_settlement_writes_the_outbox_once_and_returns_its_task(receiver: Receiver) -> None:
    job_id, _ = settling_job(receiver.url)
    (task,) = settle_job(job_id)
    assert task.name is TaskName.WEBHOOKS_DELIVER
    assert task.kwargs == {"delivery_id": str(delivery_of(job_id))}
    assert receiver.received == []  # settlement itself sends nothing
    assert settle_job(job_id) == []  # a redelivered settle adds nothing
    with unit_of_work() as session:
        assert outbox.state_of(session, job_id) == ("pending", 0)
        body = session.scalar(select(WebhookDelivery.body).where(WebhookDelivery.job_id == job_id))
    assert body is not None and body["job"]["status"] == "succeeded"


def test_a_job_without_a_url_gets_no_outbox_row() -> None:
    job_id, _ = settling_job(None)
    assert settle_job(job_id) == []
    with unit_of_work() as session:
        assert outbox.state_of(session, job_id) is None


def test_a_failed_attempt_is_rescheduled_then_delivered_signed(receiver: Receiver) -> None:
    receiver.fail_first = 1
    job_id, secret = settling_job(receiver.url)
    settle_job(job_id)
    delivery_id = delivery_of(job_id)
    assert deliver(delivery_id, FAST, LOOPBACK_ALLOWED) == FAST.webhook_backoff_s
    assert deliver(delivery_id, FAST, LOOPBACK_ALLOWED) is None
    assert deliver(delivery_id, FAST, LOOPBACK_ALLOWED) is None  # a duplicate: nothing sent
    assert len(receiver.received) == 2
    body, headers = receiver.received[-1]
    assert verify_signature(secret, body, headers[SIGNATURE_HEADER])
    assert not verify_signature("another-secret", body, headers[SIGNATURE_HEADER])
    assert json.loads(body)["job"]["id"] == str(job_id)
    assert webhook_events(job_id) == [("webhook_delivered", {})]
    with unit_of_work() as session:
        assert outbox.state_of(session, job_id) == ("delivered", 2)


def test_bounded_attempts_and_the_audit_says_only_delivery_failed(
    silent_receiver: str,
) -> None:
    job_id, _ = settling_job(silent_receiver)
    settle_job(job_id)
    delivery_id = delivery_of(job_id)
    delays = [deliver(delivery_id, FAST, LOOPBACK_ALLOWED) for _ in range(FAST.webhook_attempts)]
    assert delays == [0.5, 1.0, None]
    assert deliver(delivery_id, FAST, LOOPBACK_ALLOWED) is None
    assert webhook_events(job_id) == [("webhook_failed", {"message": "delivery failed"})]
    with unit_of_work() as session:
        assert outbox.state_of(session, job_id) == ("failed", 3)


def test_a_destination_refused_at_connect_time_is_not_retried(receiver: Receiver) -> None:
    # A URL that got past submission (or whose name now resolves to loopback) is refused when
    # connecting, without an attempt on the network and without a retry.
    job_id, _ = settling_job(receiver.url)
    settle_job(job_id)
    no_allowlist = EgressSettings(egress_allow_hosts=[])
    assert deliver(delivery_of(job_id), FAST, no_allowlist) is None
    assert receiver.received == []
    assert webhook_events(job_id) == [("webhook_failed", {"message": "delivery failed"})]


def test_the_relay_resends_only_deliveries_whose_message_was_lost(receiver: Receiver) -> None:
    lost, _ = settling_job(receiver.url)
    waiting, _ = settling_job(receiver.url)
    settle_job(lost)
    settle_job(waiting)
    grace = timedelta(seconds=WebhookSettings().webhook_relay_grace_s)
    with unit_of_work() as session:
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.job_id == lost)
            .values(next_attempt_at=WebhookDelivery.next_attempt_at - 2 * grace)
        )
    relayed = {task.kwargs["delivery_id"] for task in relay()}
    assert str(delivery_of(lost)) in relayed
    assert str(delivery_of(waiting)) not in relayed


def test_one_attempt_at_a_time(receiver: Receiver) -> None:
    job_id, _ = settling_job(receiver.url)
    settle_job(job_id)
    delivery_id = delivery_of(job_id)
    with unit_of_work() as session:
        assert outbox.claim(session, delivery_id, timedelta(minutes=1)) is not None
    # Another copy of the message finds it leased and sends nothing.
    assert deliver(delivery_id, FAST, LOOPBACK_ALLOWED) is None
    assert receiver.received == []


def test_attempts_lost_to_crashes_still_count(receiver: Receiver) -> None:
    # Workers that died mid-attempt left claims without outcomes; the bound still holds.
    job_id, _ = settling_job(receiver.url)
    settle_job(job_id)
    delivery_id = delivery_of(job_id)
    for _ in range(FAST.webhook_attempts):
        with unit_of_work() as session:
            assert outbox.claim(session, delivery_id, timedelta(0)) is not None
    assert deliver(delivery_id, FAST, LOOPBACK_ALLOWED) is None
    assert receiver.received == []
    assert webhook_events(job_id) == [("webhook_failed", {"message": "delivery failed"})]
