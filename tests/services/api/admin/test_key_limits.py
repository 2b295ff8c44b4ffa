"""A key's own limits over real HTTP, Postgres and Redis: its budget cap (held beside its
tenant's, refused with its own code, settled in both rows), its expiry, its requests per minute,
the admin routes that set them (with their 422s), and each job recording its key."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import delete, select

from services.api.plans import cost_of, load_profiles, requested_plan, template_for
from services.api.settings import ApiSettings
from shared.budgets import verify_ledger
from shared.db.models import Domain, Job, KeyBudget, Policy
from shared.db.session import unit_of_work
from tests.services.api.conftest import ServerThread, TenantHandle, finish_job

QUESTION = "Integrate x^2 from 0 to 3."
JOB = {"question": QUESTION, "domain": "math", "allow_shrink": False}


def full_cost() -> Decimal:
    """What admission reserves for :data:`JOB` (its requested plan, not shrunk)."""
    profiles = load_profiles()
    plan = requested_plan(ApiSettings(), Domain.MATH, Policy.TANDEM, None, None, None)
    return cost_of(plan, profiles, QUESTION, template_for(Domain.MATH, profiles))


def issue(admin: httpx.Client, tenant: TenantHandle, **limits: Any) -> dict[str, Any]:
    created = admin.post(f"/v1/admin/tenants/{tenant.id}/keys", json={"name": "ci", **limits})
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def client_for(server: ServerThread, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def test_a_key_cap_refuses_with_its_own_code_while_the_tenant_has_room(
    server: ServerThread, admin: httpx.Client, make_tenant: Callable[..., TenantHandle]
) -> None:
    cost = full_cost()
    tenant = make_tenant(budget_cap=str(cost * 10))
    capped = issue(admin, tenant, budget_cap=str(cost * Decimal("1.5")))
    with client_for(server, capped["key"]) as ci:
        first = ci.post("/v1/jobs", json=JOB)
        assert first.status_code == 202, first.text
        refused = ci.post("/v1/jobs", json=JOB)
        # Shrinking picks a plan that fits the key's room, as it does the tenant's.
        shrunk = ci.post("/v1/jobs", json={**JOB, "allow_shrink": True})
    assert shrunk.status_code == 202 and shrunk.json()["shrunk"] is True, shrunk.text
    assert refused.status_code == 402, refused.text
    error = refused.json()["error"]
    assert error["code"] == "key_budget_exhausted"
    assert error["limit"] == "key_cap"
    assert Decimal(error["cap"]) == cost * Decimal("1.5")
    # The tenant's other key (no cap of its own) is admitted: only the key's cap was reached.
    assert tenant.client.post("/v1/jobs", json=JOB).status_code == 202

    job_id = uuid.UUID(first.json()["id"])
    assert tenant.client.get(f"/v1/jobs/{job_id}").json()["api_key_id"] == capped["id"]
    with unit_of_work() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.api_key_id == uuid.UUID(capped["id"])
        held = session.scalars(
            select(KeyBudget).where(KeyBudget.api_key_id == uuid.UUID(capped["id"]))
        ).one()
        assert job.key_budget_id == held.id
        assert held.reserved == job.reserved_amount + Decimal(shrunk.json()["reserved"])
    charged = finish_job(job_id)
    finish_job(shrunk.json()["id"], calls=())

    shown = admin.get(f"/v1/admin/keys/{capped['id']}").json()
    assert shown["spend"]["spent"] == str(charged.normalize())  # the shrunk job cost nothing
    assert shown["spend"]["reserved"] == "0"
    assert Decimal(shown["spend"]["cap"]) == cost * Decimal("1.5")
    listed = {k["id"]: k for k in admin.get(f"/v1/admin/tenants/{tenant.id}/keys").json()}
    assert listed[capped["id"]]["spend"] == shown["spend"]
    # The tenant sees the same, for its own keys only.
    with client_for(server, capped["key"]) as ci:
        assert ci.get("/v1/keys/current").json() == shown
        own = ci.get("/v1/keys").json()
    assert {k["id"] for k in own} == set(listed) and len(own) == 2
    with unit_of_work() as session:
        assert verify_ledger(session) == []


def test_a_key_cap_above_its_tenants_is_a_422_and_nothing_changes(
    admin: httpx.Client, make_tenant: Callable[..., TenantHandle]
) -> None:
    tenant = make_tenant(budget_cap="5")
    above = admin.post(f"/v1/admin/tenants/{tenant.id}/keys", json={"budget_cap": "5.01"})
    assert above.status_code == 422, above.text
    assert above.json()["error"]["code"] == "key_cap_above_tenant"
    assert above.json()["error"]["field"] == "budget_cap"
    key = issue(admin, tenant, budget_cap="2", budget_period="daily", rate_limit_rpm=30)
    assert (key["budget_cap"], key["budget_period"], key["rate_limit_rpm"]) == ("2", "daily", 30)

    raised = admin.patch(f"/v1/admin/keys/{key['id']}", json={"budget_cap": "6"})
    assert raised.status_code == 422 and raised.json()["error"]["code"] == "key_cap_above_tenant"
    assert admin.get(f"/v1/admin/keys/{key['id']}").json()["budget_cap"] == "2"

    cleared = admin.patch(f"/v1/admin/keys/{key['id']}", json={"budget_cap": None})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["budget_cap"] is None and cleared.json()["rate_limit_rpm"] == 30

    for bad in (
        {"expires_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat()},
        {"expires_at": "2030-01-01T00:00:00"},  # no time zone
        {"rate_limit_rpm": 0},
        {"budget_period": "weekly"},
        {"unknown": 1},
    ):
        refused = admin.post(f"/v1/admin/tenants/{tenant.id}/keys", json=bad)
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.json()["error"]["code"] != "internal_error"
    assert admin.patch(f"/v1/admin/keys/{uuid.uuid4()}", json={}).status_code == 404


def test_an_expired_key_is_refused_with_its_own_code(
    server: ServerThread, admin: httpx.Client, make_tenant: Callable[..., TenantHandle]
) -> None:
    tenant = make_tenant()
    soon = issue(admin, tenant, expires_at=(datetime.now(UTC) + timedelta(seconds=2)).isoformat())
    later = issue(admin, tenant, expires_at=(datetime.now(UTC) + timedelta(days=1)).isoformat())
    with client_for(server, soon["key"]) as client:
        assert client.get("/v1/jobs").status_code == 200  # verified and cached
        time.sleep(2.2)
        expired = client.get("/v1/jobs")
    assert expired.status_code == 401, expired.text
    assert expired.json()["error"]["code"] == "key_expired"

    with client_for(server, later["key"]) as client:
        assert client.get("/v1/jobs").status_code == 200
        past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
        assert admin.patch(f"/v1/admin/keys/{later['id']}", json={"expires_at": past}).is_success
        refused = client.get("/v1/jobs")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "key_expired"
    # The tenant's other keys are untouched.
    assert tenant.client.get("/v1/jobs").status_code == 200


def test_a_key_rate_limit_counts_the_keys_requests_only(
    server: ServerThread, admin: httpx.Client, make_tenant: Callable[..., TenantHandle]
) -> None:
    tenant = make_tenant(rate_limit_rpm=100)
    limited = issue(admin, tenant, rate_limit_rpm=3)
    if time.time() % 60 > 50:  # the four requests below must fall in one minute's window
        time.sleep(60 - time.time() % 60 + 0.1)
    with client_for(server, limited["key"]) as client:
        assert [client.get("/v1/jobs").status_code for _ in range(3)] == [200, 200, 200]
        refused = client.get("/v1/jobs")
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["limit"] == "key_requests_per_minute"
    assert int(refused.headers["Retry-After"]) >= 1
    assert tenant.client.get("/v1/jobs").status_code == 200  # the tenant's own rate has room


def test_a_key_cap_holds_under_a_concurrent_jobs_limit_and_from_a_missing_row(
    server: ServerThread, admin: httpx.Client, make_tenant: Callable[..., TenantHandle]
) -> None:
    """The concurrent-jobs path locks the key's row too; a period's missing key row (a key's
    first admission of a new period) is made by the refusal and admission tried again."""
    cost = full_cost()
    tenant = make_tenant(budget_cap=str(cost * 10), max_concurrent_jobs=5)
    capped = issue(admin, tenant, budget_cap=str(cost * Decimal("1.5")))
    with unit_of_work() as session:
        session.execute(delete(KeyBudget).where(KeyBudget.api_key_id == uuid.UUID(capped["id"])))
    with client_for(server, capped["key"]) as ci:
        assert ci.post("/v1/jobs", json=JOB).status_code == 202
        refused = ci.post("/v1/jobs", json=JOB)
    assert refused.status_code == 402 and refused.json()["error"]["code"] == "key_budget_exhausted"
    with unit_of_work() as session:
        row = session.scalars(
            select(KeyBudget).where(KeyBudget.api_key_id == uuid.UUID(capped["id"]))
        ).one()
        assert row.reserved == cost.quantize(Decimal("1e-12"))
