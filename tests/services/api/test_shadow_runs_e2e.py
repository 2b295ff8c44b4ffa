"""Shadow runs through the real stack: the API, ``tandem worker`` processes, the sim engines.

A tenant's tandem job is answered again by the coordinator alone on the operator's account;
the tenant never sees it, pays for it or is limited by it, and the savings report measures
with it and says so.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from services.api.app import create_app
from services.api.settings import ApiSettings
from shared.budgets import verify_ledger
from shared.classifier import SIM_MODEL_PATH, register_version
from shared.db.models import Budget, Job, Tenant, WebhookDelivery
from shared.db.session import unit_of_work
from shared.settings import DEV_ADMIN_KEY
from tandem.cli import app as cli
from tests.conftest import start_workers, stop_workers, wait_for_workers
from tests.services.api.conftest import ServerThread
from tests.services.pipeline.support import calls_of, sim_engines, wait_terminal

pytestmark = pytest.mark.e2e
SERVICES = ["coordinator", "scorer", "executor", "accounting"]
OPERATOR = f"shadow-e2e-{uuid.uuid4().hex[:8]}"
HOOK = "https://hooks.example.com/t"  # no webhooks worker here: the outbox row is the proof


@dataclass
class Live:
    url: str
    admin: httpx.Client


@pytest.fixture(scope="module")
def live(
    artifacts_dir: Path, database_url: str, redis_url: str, api_settings: ApiSettings
) -> Iterator[Live]:
    """Workers that shadow every math tandem job and no code job, and an API before them."""
    logs = artifacts_dir / "shadow-runs-e2e"
    with sim_engines(logs) as engines:
        saved = dict(os.environ)
        os.environ.update(engines.env())  # the API prices plans with these profiles
        env = {
            **engines.env(),
            "TANDEM_SHADOW_FRACTION": "1",
            "TANDEM_SHADOW_DOMAIN_FRACTIONS": '{"code": 0}',
            "TANDEM_SHADOW_TENANT": OPERATOR,
        }
        pool = start_workers(SERVICES, logs, env)
        try:
            wait_for_workers(SERVICES, timeout_s=120)
            with unit_of_work() as session:  # stop at level 0: the executor answers at once
                register_version(
                    session,
                    SIM_MODEL_PATH,
                    version=f"shadow-{uuid.uuid4().hex[:8]}",
                    thresholds=[0.0],
                )
            settings = api_settings.model_copy(
                update={"redis_url": redis_url, "savings_min_shadow_jobs": 1}
            )
            with (
                ServerThread(create_app(settings)) as server,
                httpx.Client(
                    base_url=server.url, headers={"X-Admin-Key": DEV_ADMIN_KEY}, timeout=30
                ) as admin,
            ):
                yield Live(server.url, admin)
        finally:
            stop_workers(pool)
            os.environ.clear()
            os.environ.update(saved)


def tenant_client(live: Live, cap: str = "10") -> tuple[str, httpx.Client]:
    tenant = live.admin.post(
        "/v1/admin/tenants", json={"name": f"e2e-{uuid.uuid4().hex[:8]}", "budget_cap": cap}
    ).json()
    key = live.admin.post(f"/v1/admin/tenants/{tenant['id']}/keys", json={}).json()["key"]
    client = httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {key}"})
    return tenant["id"], client


def run_job(client: httpx.Client, domain: str) -> uuid.UUID:
    body = {"question": "What is 17 * 3 + 12?", "domain": domain, "webhook_url": HOOK}
    accepted = client.post("/v1/jobs", json=body)
    assert accepted.status_code == 202, accepted.text
    job_id = uuid.UUID(accepted.json()["id"])
    assert wait_terminal(job_id).status == "succeeded"
    return job_id


def shadow_of(job_id: uuid.UUID, timeout_s: float = 60.0) -> Job | None:
    """The job's shadow run once it has ended (None if it has none: spawned, if ever, in the
    settlement that made the job succeed)."""
    with unit_of_work() as session:
        shadow_id = session.scalar(select(Job.id).where(Job.shadow_of == job_id))
    if shadow_id is None:
        return None
    return wait_terminal(shadow_id, timeout_s)


def budget(tenant_id: uuid.UUID | str) -> tuple[Decimal, Decimal]:
    with unit_of_work() as session:
        row = session.execute(
            select(Budget.spent, Budget.reserved).where(Budget.tenant_id == tenant_id)
        ).one()
    return row.spent, row.reserved


def test_a_shadow_run_is_measured_on_the_operators_account_only(live: Live) -> None:
    tenant_id, client = tenant_client(live)
    job_id = run_job(client, "math")
    shadow = shadow_of(job_id)
    assert shadow is not None and shadow.status == "succeeded"
    assert (shadow.policy, shadow.domain) == ("llm_only", "math")
    assert calls_of(shadow.id) == [("answer", "coordinator")]  # the coordinator alone
    job = client.get(f"/v1/jobs/{job_id}").json()

    # Costs land on the operator's account; the tenant's budget holds its own job alone.
    with unit_of_work() as session:
        operator = session.scalars(select(Tenant).where(Tenant.name == OPERATOR)).one()
        deliveries = list(session.scalars(select(WebhookDelivery.job_id)))
        assert verify_ledger(session) == []
    assert shadow.tenant_id == operator.id and not operator.active
    assert budget(operator.id) == (shadow.cost, Decimal(0)) and shadow.cost > 0
    assert budget(tenant_id) == (Decimal(job["cost"]), Decimal(0))
    assert job_id in deliveries and shadow.id not in deliveries  # the tenant's webhook only

    # The tenant never sees it: not in its jobs, not readable, not in its audit.
    listed = client.get("/v1/jobs").json()
    assert [j["id"] for j in listed["data"]] == [str(job_id)]
    assert client.get(f"/v1/jobs/{shadow.id}").status_code == 404
    assert "shadow" not in client.get(f"/v1/jobs/{job_id}/audit").json()

    # The operator's audit links both ways.
    printed = CliRunner().invoke(cli, ["audit", "job", str(job_id)])
    assert printed.exit_code == 0, printed.output
    assert f"shadow run {shadow.id}  succeeded  cost" in printed.output
    printed = CliRunner().invoke(cli, ["audit", "job", str(shadow.id)])
    assert f"shadow run of job {job_id}, on the operator's account" in printed.output

    # The savings report measures with it and says so; the operator's view counts no extra job.
    today = datetime.now(UTC).date()
    span = {"start": today.isoformat(), "end": (today + timedelta(days=1)).isoformat()}
    savings = client.get("/v1/reports/savings", params=span).json()
    assert savings["estimate"]["method"] == "shadow", savings
    assert savings["estimate"]["sample_size"] == 1
    assert "shadow runs" in savings["estimate"]["detail"]
    assert savings["shadow"] == {
        "runs": 1,
        "share": 1.0,
        "tandem_cost": job["cost"],
        "shadow_cost": format(shadow.cost.normalize(), "f"),
    }
    assert Decimal(savings["counterfactual_cost"]) == shadow.cost
    usage = live.admin.get(
        "/v1/reports/usage", params={**span, "tenant_id": str(operator.id)}
    ).json()
    assert usage["jobs"]["total"] == 0


def test_a_domain_with_no_share_spawns_nothing(live: Live) -> None:
    tenant_id, client = tenant_client(live)
    job_id = run_job(client, "code")
    assert shadow_of(job_id) is None
    time.sleep(1)  # a shadow run would be in the settlement already committed; none came later
    assert shadow_of(job_id) is None
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert budget(tenant_id) == (Decimal(job["cost"]), Decimal(0))
