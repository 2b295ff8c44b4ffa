"""Budget alerts against real Postgres and a real HTTP receiver: each threshold fires once per
period however many settlements cross it at once, and is delivered signed, at least once, to
the tenant's alert URL and the operator's."""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from services.accounting.service import settle_job
from shared.alerts import EVENT_TYPE, get_alert_settings, list_alerts
from shared.budgets import Settlement, settle
from shared.db.models import (
    AlertRecipient,
    Budget,
    BudgetAlert,
    Job,
    JobEvent,
    JobStatus,
    ModelCall,
    Tenant,
    WebhookDelivery,
)
from shared.db.session import unit_of_work
from shared.tasks import TaskName
from shared.tenants.service import create_key
from shared.webhooks import (
    EVENT_HEADER,
    SIGNATURE_HEADER,
    WebhookSettings,
    deliver,
    verify_signature,
)
from tests.shared.alerts.conftest import OPERATOR_SECRET, alerting_tenant, held_jobs
from tests.shared.webhooks.conftest import LOOPBACK_ALLOWED, Receiver

pytestmark = pytest.mark.usefixtures("database_url")

FAST = WebhookSettings(webhook_attempts=3, webhook_backoff_s=0.5, webhook_timeout_s=2)


def settle_concurrently(job_ids: list[uuid.UUID], cost: str) -> list[Settlement]:
    """Each job settled in its own transaction, all released at once."""
    start = threading.Barrier(len(job_ids))

    def one(job_id: uuid.UUID) -> Settlement:
        start.wait()
        with unit_of_work() as session:
            return settle(session, job_id, Decimal(cost))

    with ThreadPoolExecutor(len(job_ids)) as pool:
        return list(pool.map(one, job_ids))


def alerts_of(tenant_id: uuid.UUID) -> list[tuple[str, str, Decimal]]:
    with unit_of_work() as session:
        rows = session.execute(
            select(BudgetAlert.period_key, BudgetAlert.threshold, BudgetAlert.spent)
            .where(BudgetAlert.tenant_id == tenant_id)
            .order_by(BudgetAlert.created_at, BudgetAlert.threshold)
        )
        return [(period, threshold, spent) for period, threshold, spent in rows]


def deliveries_of(tenant_id: uuid.UUID) -> dict[tuple[str, str], uuid.UUID]:
    """(threshold, recipient) -> delivery id."""
    with unit_of_work() as session:
        rows = session.execute(
            select(BudgetAlert.threshold, WebhookDelivery.recipient, WebhookDelivery.id)
            .join(WebhookDelivery, WebhookDelivery.alert_id == BudgetAlert.id)
            .where(BudgetAlert.tenant_id == tenant_id)
        )
        return {(threshold, recipient): id_ for threshold, recipient, id_ in rows}


def test_each_threshold_fires_once_under_concurrent_settlements() -> None:
    tenant_id, _ = alerting_tenant("1", soft="0.5", hard="1")
    jobs = held_jobs(tenant_id, ["0.0625"] * 16)
    settlements = settle_concurrently(jobs, "0.0625")
    crossed = sorted(alert.threshold for s in settlements for alert in s.alerts)
    assert crossed == ["hard", "soft"]
    # The soft alert went to the settlement that took the spend to half the cap, whichever
    # thread that was; the hard one to the settlement that spent the last of it.
    alerts = alerts_of(tenant_id)
    assert sorted((t, spent) for _, t, spent in alerts) == [
        ("hard", Decimal(1)),
        ("soft", Decimal("0.5")),
    ]
    with unit_of_work() as session:
        spent = session.scalar(select(Budget.spent).where(Budget.tenant_id == tenant_id))
        events = session.scalar(
            select(func.count())
            .select_from(JobEvent)
            .where(JobEvent.kind == "budget_alert", JobEvent.job_id.in_(jobs))
        )
    assert spent == Decimal(1)
    assert events == 2
    # Without an alert_url or an operator URL the alerts are listed, not sent.
    assert deliveries_of(tenant_id) == {}


def test_a_settlement_below_the_thresholds_records_nothing() -> None:
    tenant_id, _ = alerting_tenant("1", soft="0.5")
    (job,) = held_jobs(tenant_id, ["0.4"])
    (settlement,) = settle_concurrently([job], "0.49")
    assert settlement.alerts == () and settlement.deliveries == ()
    assert alerts_of(tenant_id) == []


def test_a_new_period_fires_again() -> None:
    tenant_id, _ = alerting_tenant("1", soft="0.5")
    november = datetime(2026, 11, 30, 12, tzinfo=UTC)
    december = datetime(2026, 12, 1, 12, tzinfo=UTC)
    first = held_jobs(tenant_id, ["0.3", "0.3"], now=november)
    settle_concurrently(first, "0.3")
    second = held_jobs(tenant_id, ["0.3", "0.3"], now=december)
    settle_concurrently(second, "0.3")
    assert [(period, threshold) for period, threshold, _ in alerts_of(tenant_id)] == [
        ("2026-11", "soft"),
        ("2026-12", "soft"),
    ]


def test_the_alert_is_delivered_signed_to_the_tenant_and_the_operator(
    receiver: Receiver, operator_url: str
) -> None:
    tenant_id, tenant_secret = alerting_tenant("1", soft="0.5", alert_url=receiver.url)
    (job_id,) = held_jobs(tenant_id, ["0.8"])
    with unit_of_work() as session:  # the job ran (one call cost 0.6) and waits to settle
        session.add(
            ModelCall(
                job_id=job_id,
                step="executor",
                role="executor",
                model="m",
                engine="test",
                prompt_tokens=1,
                generated_tokens=1,
                cost=Decimal("0.6"),
            )
        )
        session.get_one(Job, job_id).status = JobStatus.SETTLING.value
    tasks = settle_job(job_id)
    deliveries = deliveries_of(tenant_id)
    assert set(deliveries) == {("soft", "tenant"), ("soft", "operator")}
    assert [t.name for t in tasks] == [TaskName.WEBHOOKS_DELIVER] * 2
    assert {t.kwargs["delivery_id"] for t in tasks} == {str(d) for d in deliveries.values()}
    assert settle_job(job_id) == []  # a redelivered settle sends nothing again

    for delivery_id in deliveries.values():
        assert deliver(delivery_id, FAST, LOOPBACK_ALLOWED) is None
    assert len(receiver.received) == 2
    secrets = {AlertRecipient.TENANT: tenant_secret, AlertRecipient.OPERATOR: OPERATOR_SECRET}
    signed_by = []
    for body, headers in receiver.received:
        assert headers[EVENT_HEADER] == EVENT_TYPE
        payload = json.loads(body)
        assert payload["alert"]["tenant"]["id"] == str(tenant_id)
        assert (payload["alert"]["threshold"], payload["alert"]["ratio"]) == ("soft", "0.5")
        assert (payload["alert"]["cap"], payload["alert"]["spent"]) == ("1", "0.6")
        assert payload["alert"]["job_id"] == str(job_id)
        signed_by += [
            r for r, s in secrets.items() if verify_signature(s, body, headers[SIGNATURE_HEADER])
        ]
    assert sorted(signed_by) == [AlertRecipient.OPERATOR, AlertRecipient.TENANT]
    with unit_of_work() as session:
        (row,) = list_alerts(session, tenant_id)
    assert (row.tenant_delivery, row.operator_delivery) == ("delivered", "delivered")


def test_a_receiver_that_is_down_gets_the_alert_on_a_later_attempt(receiver: Receiver) -> None:
    receiver.fail_first = 2
    tenant_id, secret = alerting_tenant("1", soft="0.5", alert_url=receiver.url)
    (job_id,) = held_jobs(tenant_id, ["0.7"])
    (settlement,) = settle_concurrently([job_id], "0.7")
    (delivery_id,) = settlement.deliveries
    assert deliver(delivery_id, FAST, LOOPBACK_ALLOWED) == 0.5
    assert deliver(delivery_id, FAST, LOOPBACK_ALLOWED) == 1.0
    assert deliver(delivery_id, FAST, LOOPBACK_ALLOWED) is None
    assert len(receiver.received) == 3
    bodies = [json.loads(body)["alert"]["id"] for body, _ in receiver.received]
    assert len(set(bodies)) == 1  # the same alert each time: receivers deduplicate by its id
    body, headers = receiver.received[-1]
    assert verify_signature(secret, body, headers[SIGNATURE_HEADER])
    with unit_of_work() as session:
        state = session.scalar(
            select(WebhookDelivery.state).where(WebhookDelivery.id == delivery_id)
        )
    assert state == "delivered"


def test_a_capped_keys_own_budget_alerts_once_per_threshold_at_its_own_ratio() -> None:
    tenant_id, _ = alerting_tenant("10", soft="0.5", hard="1")
    with unit_of_work() as session:
        tenant = session.get_one(Tenant, tenant_id)
        key = create_key(
            session, tenant, "batch", budget_cap=Decimal(1), soft_alert_ratio=Decimal("0.6")
        ).key
        session.expunge(key)
    jobs = held_jobs(tenant_id, ["0.25"] * 4, key=key)
    settlements = settle_concurrently(jobs, "0.25")
    crossed = sorted(
        (a.threshold, a.ratio, a.spent, a.key_id) for s in settlements for a in s.alerts
    )
    # The key's soft ratio is its own, its hard one its tenant's; the tenant's budget (1 of
    # 10 spent) crossed nothing.
    assert crossed == [
        ("hard", Decimal(1), Decimal(1), key.id),
        ("soft", Decimal("0.6"), Decimal("0.75"), key.id),
    ]
    with unit_of_work() as session:
        listed = list_alerts(session, tenant_id)
    assert {(row.threshold, row.key_id, row.key_prefix) for row in listed} == {
        ("soft", key.id, key.prefix),
        ("hard", key.id, key.prefix),
    }


def test_an_operator_alert_is_not_sent_unsigned(
    receiver: Receiver, operator_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A webhooks worker started without the operator's secret cannot sign: it gives up at once.
    tenant_id, _ = alerting_tenant("1", soft="0.5")
    (job_id,) = held_jobs(tenant_id, ["0.7"])
    (settlement,) = settle_concurrently([job_id], "0.7")
    (delivery_id,) = settlement.deliveries
    monkeypatch.delenv("TANDEM_OPERATOR_ALERT_URL")
    monkeypatch.delenv("TANDEM_OPERATOR_ALERT_SECRET")
    get_alert_settings.cache_clear()
    assert deliver(delivery_id, FAST, LOOPBACK_ALLOWED) is None
    assert receiver.received == []
    with unit_of_work() as session:
        (row,) = list_alerts(session, tenant_id)
    assert (row.tenant_delivery, row.operator_delivery) == (None, "failed")
