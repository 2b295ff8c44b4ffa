"""The job routes through a real uvicorn server, real Postgres and real Redis."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest
import redis
from sqlalchemy import func, select, update

from services.api.plans import cost_of, load_profiles, requested_plan, template_for
from services.api.settings import ApiSettings
from shared.budgets import verify_ledger
from shared.db.models import Domain, Job, JobEvent, JobStatus, LedgerEntry, Policy
from shared.db.session import unit_of_work
from shared.tasks import Queue
from tests.services.api.conftest import TenantHandle, finish_job

QUESTION = "What is 2+2?"
Make = Callable[..., TenantHandle]


def full_cost(settings: ApiSettings, **plan: object) -> Decimal:
    chosen = requested_plan(
        settings,
        Domain.MATH,
        plan.get("policy", Policy.TANDEM),  # type: ignore[arg-type]
        None,
        plan.get("max_levels"),  # type: ignore[arg-type]
        plan.get("max_answer_tokens"),  # type: ignore[arg-type]
    )
    return cost_of(chosen, load_profiles(), QUESTION, template_for(Domain.MATH, load_profiles()))


def submit(tenant: TenantHandle, **body: object) -> httpx.Response:
    return tenant.client.post("/v1/jobs", json={"question": QUESTION, "domain": "math", **body})


def queue_length(settings: ApiSettings) -> int:
    client = redis.Redis.from_url(settings.redis_url)
    return sum(int(client.llen(q.value)) for q in Queue)


def jobs_of(tenant: TenantHandle) -> int:
    with unit_of_work() as session:
        return int(
            session.execute(
                select(func.count()).select_from(Job).where(Job.tenant_id == tenant.id)
            ).scalar_one()
        )


def test_submit_get_and_list(make_tenant: Make, api_settings: ApiSettings) -> None:
    tenant = make_tenant()
    accepted = submit(tenant, metadata={"ticket": 7})
    assert accepted.status_code == 202, accepted.text
    body = accepted.json()
    assert accepted.headers["Location"] == body["url"] == f"/v1/jobs/{body['id']}"
    assert Decimal(body["reserved"]) == full_cost(api_settings)
    assert body["levels"] == api_settings.levels and body["shrunk"] is False
    job = tenant.client.get(body["url"]).json()
    assert job["status"] == "queued" and job["metadata"] == {"ticket": 7}
    assert job["usage"] == [] and job["answer"] is None
    finish_job(body["id"], answer="4")
    job = tenant.client.get(body["url"]).json()
    assert job["status"] == "succeeded" and job["answer"] == "4"
    assert {u["role"]: u["generated_tokens"] for u in job["usage"]} == {
        "coordinator": 20,
        "executor": 5,
    }
    assert Decimal(job["cost"]) == Decimal("0.00011")
    assert job["truncation"]["level"] == 1 and job["timings"]["run_s"] == 0
    listed = tenant.client.get("/v1/jobs").json()
    assert [j["id"] for j in listed["data"]] == [body["id"]]


def test_cursor_pagination_and_filters(make_tenant: Make) -> None:
    tenant = make_tenant()
    ids = [submit(tenant).json()["id"] for _ in range(5)]
    finish_job(ids[0])
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = tenant.client.get("/v1/jobs", params=params).json()
        seen += [j["id"] for j in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    done = tenant.client.get("/v1/jobs", params={"status": "succeeded"}).json()
    assert [j["id"] for j in done["data"]] == [ids[0]]
    queued = tenant.client.get("/v1/jobs", params=[("status", "queued"), ("status", "failed")])
    assert len(queued.json()["data"]) == 4
    later = tenant.client.get("/v1/jobs", params={"created_after": "2999-01-01T00:00:00Z"})
    assert later.json() == {"data": [], "next_cursor": None}


def test_idempotency_key_returns_the_same_job(make_tenant: Make, api_settings: ApiSettings) -> None:
    tenant = make_tenant()
    headers = {"Idempotency-Key": "order-123"}
    first = tenant.client.post(
        "/v1/jobs", json={"question": QUESTION, "domain": "math"}, headers=headers
    )
    before = queue_length(api_settings)
    again = tenant.client.post(
        "/v1/jobs", json={"question": QUESTION, "domain": "math"}, headers=headers
    )
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "True"
    assert queue_length(api_settings) == before  # the replay published nothing
    other = tenant.client.post(
        "/v1/jobs", json={"question": "another", "domain": "math"}, headers=headers
    )
    assert other.status_code == 409 and other.json()["error"]["field"] == "Idempotency-Key"
    assert jobs_of(tenant) == 1
    # Same key, another tenant: an unrelated job.
    stranger = make_tenant()
    theirs = stranger.client.post(
        "/v1/jobs", json={"question": QUESTION, "domain": "math"}, headers=headers
    )
    assert theirs.status_code == 202 and theirs.json()["id"] != first.json()["id"]


@pytest.mark.parametrize(
    ("body", "headers", "status", "field"),
    [
        ({"question": "", "domain": "math"}, {}, 422, "question"),
        ({"question": "   ", "domain": "math"}, {}, 422, "question"),
        ({"question": "x" * 20_000, "domain": "math"}, {}, 413, "question"),
        ({"question": "q", "domain": "poetry"}, {}, 422, "domain"),
        ({"question": "q", "domain": "math", "policy": "cheap"}, {}, 422, "policy"),
        ({"question": "q", "domain": "math", "max_cost": -1}, {}, 422, "max_cost"),
        ({"question": "q", "domain": "math", "max_cost": "1e30"}, {}, 422, "max_cost"),
        ({"question": "q", "domain": "math", "max_cost": "NaN"}, {}, 422, "max_cost"),
        ({"question": "q", "domain": "math", "policy": "fixed_level"}, {}, 422, "level"),
        (
            {"question": "q", "domain": "math", "level": 9, "policy": "fixed_level"},
            {},
            422,
            "level",
        ),
        (
            {"question": "q", "domain": "math", "max_answer_tokens": 10**9},
            {},
            422,
            "max_answer_tokens",
        ),
        ({"question": "q", "domain": "math", "surprise": 1}, {}, 422, "surprise"),
        ({"question": "q", "domain": "math", "webhook_url": "ftp://x"}, {}, 422, "webhook_url"),
        (
            {"question": "q", "domain": "math"},
            {"Idempotency-Key": "bad key!"},
            422,
            "Idempotency-Key",
        ),
    ],
)
def test_bad_input_is_a_clear_4xx_and_admits_nothing(
    make_tenant: Make, body: dict[str, object], headers: dict[str, str], status: int, field: str
) -> None:
    tenant = make_tenant()
    response = tenant.client.post("/v1/jobs", json=body, headers=headers)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["field"] == field and error["code"] and error["message"]
    assert jobs_of(tenant) == 0


def test_malformed_json_bad_uuid_bad_cursor(make_tenant: Make) -> None:
    tenant = make_tenant()
    broken = tenant.client.post(
        "/v1/jobs", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 422 and broken.json()["error"]["code"] == "invalid_request"
    assert tenant.client.get("/v1/jobs/not-a-uuid").status_code == 422
    bad = tenant.client.get("/v1/jobs", params={"cursor": "garbage"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "cursor"
    missing = tenant.client.get(f"/v1/jobs/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    nowhere = tenant.client.get("/v1/nowhere")
    assert nowhere.status_code == 404 and "error" in nowhere.json()
    for raw, field in (
        (b'{"question":"q","domain":"math","metadata":{"x":1e400}}', "metadata"),
        (b'{"question":"\\ud800","domain":"math"}', "question"),
        (
            b'{"question":"q","domain":"math","webhook_url":"http://' + b"a" * 3000 + b'.io"}',
            "webhook_url",
        ),
    ):
        odd = tenant.client.post(
            "/v1/jobs", content=raw, headers={"Content-Type": "application/json"}
        )
        assert odd.status_code == 422, odd.text
        assert odd.json()["error"]["field"] == field
    nested = b'{"question":"q","domain":"math","metadata":{"a":' + b"[" * 50000 + b"]" * 50000
    deep = tenant.client.post(
        "/v1/jobs", content=nested + b"}}", headers={"Content-Type": "application/json"}
    )
    assert deep.status_code == 400 and deep.json()["error"]["code"] == "bad_request"
    assert jobs_of(tenant) == 0
    huge = tenant.client.post(
        "/v1/jobs", content=b"x" * 2_000_000, headers={"Content-Type": "application/json"}
    )
    assert huge.status_code == 413


def test_authentication(server: object, make_tenant: Make) -> None:
    tenant = make_tenant()
    anonymous = httpx.Client(base_url=tenant.client.base_url)
    assert anonymous.get("/v1/jobs").status_code == 401
    wrong = anonymous.get("/v1/jobs", headers={"Authorization": "Bearer tdm_nope_nope"})
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"] == "Bearer"
    assert anonymous.get("/v1/jobs", headers={"X-API-Key": tenant.key}).status_code == 200
    # A tenant key is not an admin key.
    assert (
        anonymous.get("/v1/admin/tenants", headers={"X-Admin-Key": tenant.key}).status_code == 403
    )
    assert anonymous.get("/v1/admin/tenants").status_code == 401


def test_revoked_key_is_refused(make_tenant: Make, admin: httpx.Client) -> None:
    tenant = make_tenant()
    assert tenant.client.get("/v1/jobs").status_code == 200
    keys = admin.get(f"/v1/admin/tenants/{tenant.id}/keys").json()
    assert [k["prefix"] for k in keys] == [tenant.key[:12]]
    assert "key" not in keys[0]
    revoked = admin.post(f"/v1/admin/keys/{keys[0]['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert tenant.client.get("/v1/jobs").status_code == 401


def test_tenant_isolation_on_every_endpoint(make_tenant: Make) -> None:
    owner, other = make_tenant(), make_tenant()
    job_id = submit(owner).json()["id"]
    for method, path in (
        ("GET", f"/v1/jobs/{job_id}"),
        ("POST", f"/v1/jobs/{job_id}/cancel"),
        ("GET", f"/v1/jobs/{job_id}/events"),
    ):
        response = other.client.request(method, path)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["code"] == "not_found"
    assert other.client.get("/v1/jobs").json()["data"] == []
    assert owner.client.get(f"/v1/jobs/{job_id}").json()["cancel_requested"] is False


def test_budget_refusal_is_402_with_figures_and_queues_nothing(
    make_tenant: Make, api_settings: ApiSettings
) -> None:
    tenant = make_tenant(budget_cap="0.00001")
    before = queue_length(api_settings)
    refused = submit(tenant)
    assert refused.status_code == 402
    error = refused.json()["error"]
    assert error["code"] == "budget_exceeded"
    assert Decimal(error["cap"]) == Decimal("0.00001")
    assert Decimal(error["spent"]) == Decimal(error["reserved"]) == 0
    assert Decimal(error["requested"]) > Decimal("0.00001")
    assert jobs_of(tenant) == 0 and queue_length(api_settings) == before
    with unit_of_work() as session:
        entries = session.execute(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.tenant_id == tenant.id)
        ).scalar_one()
    assert entries == 0


def test_plan_shrinks_to_fit_the_budget_unless_refused(
    make_tenant: Make, api_settings: ApiSettings
) -> None:
    fits_two_levels = full_cost(api_settings, max_levels=2) + Decimal("0.000001")
    tenant = make_tenant(budget_cap=str(fits_two_levels))
    strict = submit(tenant, allow_shrink=False)
    assert strict.status_code == 402
    shrunk = submit(tenant)
    assert shrunk.status_code == 202, shrunk.text
    assert shrunk.json()["shrunk"] is True
    assert shrunk.json()["levels"] == api_settings.levels[:3]
    assert Decimal(shrunk.json()["reserved"]) <= fits_two_levels


def test_max_cost_shrinks_the_plan(make_tenant: Make, api_settings: ApiSettings) -> None:
    tenant = make_tenant()
    limit = full_cost(api_settings, max_levels=1)
    accepted = submit(tenant, max_cost=str(limit))
    assert accepted.status_code == 202
    assert accepted.json()["levels"] == api_settings.levels[:2]
    too_small = submit(tenant, max_cost="0.000000001")
    assert too_small.status_code == 402
    assert too_small.json()["error"]["limit"] == "max_cost"


def test_rate_limit_per_minute(make_tenant: Make) -> None:
    tenant = make_tenant(rate_limit_rpm=3)
    codes = [tenant.client.get("/v1/jobs").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = tenant.client.get("/v1/jobs")
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60


def test_concurrent_jobs_limit(make_tenant: Make) -> None:
    tenant = make_tenant(max_concurrent_jobs=2)
    first, second = submit(tenant), submit(tenant)
    assert first.status_code == second.status_code == 202
    third = submit(tenant)
    assert third.status_code == 429 and third.headers["Retry-After"]
    assert third.json()["error"]["limit"] == "concurrent_jobs"
    assert jobs_of(tenant) == 2
    finish_job(first.json()["id"])
    assert submit(tenant).status_code == 202


def test_cancel_queued_job_settles_now(make_tenant: Make, admin: httpx.Client) -> None:
    tenant = make_tenant(budget_cap="1")
    job_id = submit(tenant).json()["id"]
    cancelled = tenant.client.post(f"/v1/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json() == {"id": job_id, "status": "cancelled", "cancel_requested": True}
    again = tenant.client.post(f"/v1/jobs/{job_id}/cancel")
    assert again.json()["status"] == "cancelled"
    budget = admin.get(f"/v1/admin/tenants/{tenant.id}").json()["budget"]
    assert Decimal(budget["reserved"]) == 0 and Decimal(budget["spent"]) == 0
    with unit_of_work() as session:
        kinds = sorted(
            session.execute(
                select(LedgerEntry.kind).where(LedgerEntry.job_id == uuid.UUID(job_id))
            ).scalars()
        )
        assert kinds == ["release", "reserve", "settle"]
        assert verify_ledger(session) == []


def cancelled_count(client: httpx.Client) -> float:
    lines = client.get("/metrics").text.splitlines()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in lines
        if line.startswith("tandem_jobs_finished_total{") and 'status="cancelled"' in line
    )


def test_a_cancelled_queued_job_changes_status_as_every_job_does(
    make_tenant: Make, admin: httpx.Client
) -> None:
    """Through the state machine: its status event, its end time, the jobs-finished metric."""
    tenant = make_tenant()
    before = cancelled_count(admin)
    job_id = uuid.UUID(submit(tenant).json()["id"])
    assert tenant.client.post(f"/v1/jobs/{job_id}/cancel").json()["status"] == "cancelled"
    tenant.client.post(f"/v1/jobs/{job_id}/cancel")  # twice: nothing more
    with unit_of_work() as session:
        job = session.get_one(Job, job_id)
        assert job.finished_at is not None and job.started_at is None
        assert (job.error_code, job.cancel_requested) == ("cancelled", True)
        events = session.execute(
            select(JobEvent.kind, JobEvent.status, JobEvent.data)
            .where(JobEvent.job_id == job_id)
            .order_by(JobEvent.id)
        ).all()
    changes = [(kind, status, data.get("from")) for kind, status, data in events]
    assert changes[0][0] == "submitted"
    assert [c for c in changes if c[0] == "status"] == [("status", "cancelled", "queued")]
    assert cancelled_count(admin) == before + 1


def test_cancel_running_job_asks_the_pipeline(make_tenant: Make) -> None:
    tenant = make_tenant()
    job_id = submit(tenant).json()["id"]
    with unit_of_work() as session:
        session.execute(
            update(Job)
            .where(Job.id == uuid.UUID(job_id))
            .values(status=JobStatus.COORDINATING.value, started_at=func.now())
        )
    cancelled = tenant.client.post(f"/v1/jobs/{job_id}/cancel").json()
    assert cancelled == {"id": job_id, "status": "coordinating", "cancel_requested": True}
    assert tenant.client.get(f"/v1/jobs/{job_id}").json()["reserved"] != "0"


def test_admin_budget_update_and_ledger_verify(make_tenant: Make, admin: httpx.Client) -> None:
    tenant = make_tenant(budget_cap="0.00001")
    assert submit(tenant).status_code == 402
    updated = admin.patch(f"/v1/admin/tenants/{tenant.id}", json={"budget_cap": "5"})
    assert updated.status_code == 200 and Decimal(updated.json()["budget"]["cap"]) == 5
    assert submit(tenant).status_code == 202
    assert admin.patch(f"/v1/admin/tenants/{tenant.id}", json={"budget_cap": -1}).status_code == 422
    assert admin.get(f"/v1/admin/tenants/{uuid.uuid4()}").status_code == 404
    duplicate = admin.post("/v1/admin/tenants", json={"name": tenant.name})
    assert duplicate.status_code == 409
    assert admin.get("/v1/admin/ledger/verify").json() == {"ok": True, "problems": []}


def test_health_and_readiness_without_workers(server: object, admin: httpx.Client) -> None:
    assert admin.get("/healthz").json() == {"status": "ok"}
    ready = admin.get("/readyz")
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["postgres"] == "ok" and checks["redis"] == "ok"
    assert set(checks["queues"].values()) == {"no consumer"}


def test_levels_per_job_and_per_domain(make_tenant: Make) -> None:
    tenant = make_tenant()
    accepted = submit(tenant, levels=[0, 50, 150])
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["levels"] == [0, 50, 150]
    for bad in ([], [10, 20], [0, 30, 30], [0, 10**6]):
        response = submit(tenant, levels=bad)
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["error"]["field"] == "levels"
    settings = ApiSettings(domain_levels={"code": [0, 7]})
    assert requested_plan(settings, Domain.CODE, Policy.TANDEM, None, None, None).levels == (0, 7)
    assert requested_plan(settings, Domain.MATH, Policy.TANDEM, None, None, None).levels == tuple(
        settings.levels
    )


def test_a_tenant_limit_is_removed_with_null_and_a_required_field_is_not(
    make_tenant: Make, admin: httpx.Client
) -> None:
    tenant = make_tenant(budget_cap="5", max_concurrent_jobs=1)
    limits = {"rate_limit_rpm": 600, "max_cost_per_request": "1", "alert_url": "https://x.test/a"}
    assert admin.patch(f"/v1/admin/tenants/{tenant.id}", json=limits).status_code == 200
    assert submit(tenant).status_code == 202
    assert submit(tenant).status_code == 429  # one job at a time, and one is queued
    for required in ("budget_cap", "budget_period", "soft_alert_ratio", "active"):
        refused = admin.patch(
            f"/v1/admin/tenants/{tenant.id}", json={required: None, "max_concurrent_jobs": None}
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["field"] == required
    kept = admin.get(f"/v1/admin/tenants/{tenant.id}").json()
    assert (kept["budget_cap"], kept["active"], kept["max_concurrent_jobs"]) == ("5", True, 1)
    cleared = admin.patch(
        f"/v1/admin/tenants/{tenant.id}",
        json={name: None for name in [*limits, "max_concurrent_jobs"]},
    )
    assert cleared.status_code == 200, cleared.text
    body = cleared.json()
    assert [body[name] for name in [*limits, "max_concurrent_jobs"]] == [None] * 4
    assert body["budget_cap"] == "5"
    assert submit(tenant).status_code == 202  # no concurrent-jobs limit any more
