"""Tenants with budgets and held jobs, committed (settlements run in their own transactions,
concurrently), the webhook tests' loopback receiver, and the operator's alert settings."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from shared.alerts import get_alert_settings
from shared.budgets import Reservation, record_reserve, reserve
from shared.budgets import key_repository as key_repo
from shared.db.models import ApiKey, Job, KeyBudget, Policy, Tenant
from shared.db.session import unit_of_work
from shared.tenants.service import create_tenant
from tests.shared.webhooks.conftest import Receiver
from tests.shared.webhooks.conftest import receiver as receiver  # the same real HTTP receiver

OPERATOR_SECRET = "operator-alert-secret"


@pytest.fixture
def operator_url(monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> Iterator[str]:
    """TANDEM_OPERATOR_ALERT_URL set for this test (on the receiver, under its own path)."""
    url = f"{receiver.url}/operator"
    monkeypatch.setenv("TANDEM_OPERATOR_ALERT_URL", url)
    monkeypatch.setenv("TANDEM_OPERATOR_ALERT_SECRET", OPERATOR_SECRET)
    get_alert_settings.cache_clear()
    yield url
    monkeypatch.undo()
    get_alert_settings.cache_clear()


def hold_in_key(session: Session, key: ApiKey, reservation: Reservation) -> uuid.UUID:
    """The key budget row's share of a hold (admission's statement takes both at once)."""
    period = reservation.period_key
    key_repo.ensure_key_budget(session, key.id, period, key.budget_cap)
    return session.execute(
        update(KeyBudget)
        .where(KeyBudget.api_key_id == key.id, KeyBudget.period_key == period)
        .values(reserved=KeyBudget.reserved + reservation.amount)
        .returning(KeyBudget.id)
    ).scalar_one()


def alerting_tenant(
    cap: str, *, soft: str = "0.5", hard: str = "1", alert_url: str | None = None
) -> tuple[uuid.UUID, str]:
    """A new tenant; (id, webhook secret). The URL is set on the row: the loopback receiver
    would be refused by the check at the API (tested there)."""
    with unit_of_work() as session:
        tenant = create_tenant(
            session,
            f"alerts-{uuid.uuid4().hex[:10]}",
            budget_cap=Decimal(cap),
            soft_alert_ratio=Decimal(soft),
            hard_alert_ratio=Decimal(hard),
        )
        tenant.alert_url = alert_url
        return tenant.id, tenant.webhook_secret


def held_jobs(
    tenant_id: uuid.UUID,
    amounts: list[str],
    now: datetime | None = None,
    key: ApiKey | None = None,
) -> list[uuid.UUID]:
    """Jobs holding ``amounts`` in the tenant's period of ``now`` (and in ``key``'s budget, as
    admission holds a capped key's jobs), committed."""
    ids: list[uuid.UUID] = []
    with unit_of_work() as session:
        tenant = session.get(Tenant, tenant_id)
        assert tenant is not None
        for amount in amounts:
            reservation = reserve(session, tenant, Decimal(amount), now=now)
            key_budget_id = None if key is None else hold_in_key(session, key, reservation)
            job = Job(
                id=uuid.uuid4(),
                tenant_id=tenant.id,
                domain="math",
                policy=Policy.LLM_ONLY.value,
                question="q",
                levels=[0],
                max_answer_tokens=16,
                prompt_version="v1",
                budget_id=reservation.budget_id,
                api_key_id=None if key is None else key.id,
                key_budget_id=key_budget_id,
                reserved_amount=reservation.amount,
            )
            session.add(job)
            session.flush()
            record_reserve(session, tenant.id, job.id, reservation)
            ids.append(job.id)
    return ids
