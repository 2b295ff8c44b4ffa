"""The ledger gauges on /metrics: what ``tandem ledger verify`` finds, counted by kind, checked
at most every ``ledger_check_interval_s``."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

from prometheus_client.core import Metric
from sqlalchemy import update

from services.api.ops.metrics import LedgerGauges
from services.api.settings import ApiSettings
from shared.budgets.service import LEDGER_PROBLEM_KINDS, current_budget
from shared.db.models import Budget
from shared.db.session import unit_of_work
from shared.tenants import create_tenant


def read(gauges: LedgerGauges) -> tuple[dict[str, float], float]:
    families: dict[str, Metric] = {f.name: f for f in gauges.collect()}
    problems = {s.labels["kind"]: s.value for s in families["tandem_ledger_problems"].samples}
    (checked,) = families["tandem_ledger_checked_timestamp_seconds"].samples
    return problems, checked.value


def set_spent(budget_id: uuid.UUID, spent: Decimal) -> None:
    with unit_of_work() as session:
        session.execute(update(Budget).where(Budget.id == budget_id).values(spent=spent))


def test_a_broken_invariant_shows_at_the_next_check_and_not_before(
    api_settings: ApiSettings,
) -> None:
    every_scrape = LedgerGauges(api_settings.model_copy(update={"ledger_check_interval_s": 1e-6}))
    hourly = LedgerGauges(api_settings.model_copy(update={"ledger_check_interval_s": 3600}))
    before, _ = read(every_scrape)
    assert set(before) == set(LEDGER_PROBLEM_KINDS)
    assert read(hourly)[0] == before  # its check for the hour
    with unit_of_work() as session:
        tenant = create_tenant(session, f"ledger-{uuid.uuid4().hex[:8]}", budget_cap=Decimal(1))
        budget_id = current_budget(session, tenant).id
    started = time.time()
    set_spent(budget_id, Decimal("0.5"))  # spent with nothing settled
    try:
        after, checked = read(every_scrape)
        assert after == {**before, "budget": before["budget"] + 1}
        assert checked >= started
        assert read(hourly)[0] == before  # not checked again yet
    finally:
        set_spent(budget_id, Decimal(0))
    assert read(every_scrape)[0] == before
