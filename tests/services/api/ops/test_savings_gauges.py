"""The savings gauges on /metrics: the month's shadow share per domain, next to the savings."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from prometheus_client.core import Metric

from services.api.ops.metrics import SavingsGauges
from services.api.settings import ApiSettings
from shared.db.models import Job
from shared.db.session import unit_of_work
from shared.rollups import repository as rollups
from shared.tenants import create_tenant


def succeeded(tenant_id: uuid.UUID, policy: str, cost: str, shadow_of: Job | None = None) -> Job:
    now = datetime.now(UTC)
    return Job(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        status="succeeded",
        domain="general",
        policy=policy,
        question="Name a prime.",
        levels=[0],
        max_answer_tokens=64,
        prompt_version="test",
        cost=Decimal(cost),
        finished_at=now,
        shadow_of=None if shadow_of is None else shadow_of.id,
        shadow_of_tenant_id=None if shadow_of is None else shadow_of.tenant_id,
        shadow_of_cost=None if shadow_of is None else shadow_of.cost,
        rolled_up=shadow_of is not None,
    )


def shares(gauges: SavingsGauges) -> dict[str, float]:
    families: dict[str, Metric] = {f.name: f for f in gauges.collect()}
    return {s.labels["domain"]: s.value for s in families["tandem_savings_shadow_share"].samples}


def test_the_shadow_share_counts_the_months_measured_jobs(api_settings: ApiSettings) -> None:
    before = shares(SavingsGauges(api_settings)).get("general", 0.0)
    with unit_of_work() as session:
        tenant = create_tenant(session, f"gauges-{uuid.uuid4().hex[:8]}")
        operator = create_tenant(session, f"gauges-shadow-{uuid.uuid4().hex[:8]}")
        parent = succeeded(tenant.id, "tandem", "0.001")
        session.add(parent)
        session.flush()
        session.add(succeeded(operator.id, "llm_only", "0.01", shadow_of=parent))
        session.flush()
        rollups.add_settled_job(session, parent)
    after = shares(SavingsGauges(api_settings))["general"]
    # One more job of the month, and it is measured: the share can only grow (it was < 1, or 1).
    assert 0 < after <= 1
    assert after > before or before == 1.0
