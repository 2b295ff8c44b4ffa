"""Usage per API key: settled jobs rolled up per key (shared.rollups' key roll-ups, the way
settlement adds them), read back grouped by key, by day and key, and by tenant and key, as
JSON rows and CSV; group_by=key with other keys is a 422."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from services.api.reports import export, service
from services.api.reports.params import GroupKey, Scope, TimeRange, group_keys
from shared.db.models import ApiKey, Job, ModelCall, Tenant
from shared.db.session import unit_of_work
from shared.errors import ValidationFailed
from shared.rollups import repository as rollups
from shared.tenants import create_key, create_tenant
from tests.services.api.conftest import TenantHandle, finish_job

MARCH = TimeRange(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))


def settled_job(
    session: Session, tenant: Tenant, key: ApiKey | None, day: int, cost: str, calls: int = 1
) -> None:
    created = datetime(2026, 3, day, 9, tzinfo=UTC)
    job = Job(
        id=uuid.uuid4(),
        tenant_id=tenant.id,
        api_key_id=None if key is None else key.id,
        status="succeeded",
        domain="math",
        policy="tandem",
        question="q",
        levels=[0, 100],
        max_answer_tokens=64,
        prompt_version="test",
        cost=Decimal(cost),
        created_at=created,
        updated_at=created,
        finished_at=created,
    )
    session.add(job)
    session.flush()
    for n in range(calls):
        session.add(
            ModelCall(
                job_id=job.id,
                step=f"s{n}",
                role="coordinator",
                model="big",
                engine="test",
                prompt_tokens=10,
                generated_tokens=5,
                cost=Decimal(cost) / calls,
                created_at=created,
            )
        )
    session.flush()
    assert rollups.add_settled_job(session, job)


def test_usage_grouped_by_key_sums_each_keys_jobs(db_session: Session) -> None:
    tenant = create_tenant(db_session, f"bykey-{uuid.uuid4().hex[:8]}", budget_cap=Decimal(9))
    other = create_tenant(db_session, f"bykey-{uuid.uuid4().hex[:8]}", budget_cap=Decimal(9))
    ci = create_key(db_session, tenant, "ci").key
    prod = create_key(db_session, tenant, "prod").key
    elsewhere = create_key(db_session, other, "x").key
    settled_job(db_session, tenant, ci, 2, "0.25", calls=2)
    settled_job(db_session, tenant, ci, 3, "0.5")
    settled_job(db_session, tenant, prod, 3, "1")
    settled_job(db_session, tenant, None, 4, "2")  # made by hand: no key
    settled_job(db_session, other, elsewhere, 3, "7")

    by_key = service.usage_report(db_session, Scope(tenant.id), MARCH, [GroupKey.KEY], 100)
    rows = {r["key"]: (r["key_prefix"], r["key_name"], r["calls"], r["cost"]) for r in by_key.rows}
    assert rows == {
        str(ci.id): (ci.prefix, "ci", 3, "0.75"),
        str(prod.id): (prod.prefix, "prod", 1, "1"),
        None: (None, None, 1, "2"),
    }
    assert by_key.totals.cost == "3.75"

    daily = service.usage_report(
        db_session, Scope(tenant.id), MARCH, [GroupKey.DAY, GroupKey.KEY], 100
    )
    assert [(r["day"], r["key"], r["cost"]) for r in daily.rows if r["key"] == str(ci.id)] == [
        ("2026-03-02", str(ci.id), "0.25"),
        ("2026-03-03", str(ci.id), "0.5"),
    ]

    everyone = service.usage_report(
        db_session, Scope(None), MARCH, [GroupKey.TENANT, GroupKey.KEY], 10_000
    )
    mine = {(r["tenant"], r["key"]): r["cost"] for r in everyone.rows}
    assert mine[(str(other.id), str(elsewhere.id))] == "7"
    assert mine[(str(tenant.id), str(prod.id))] == "1"

    table = list(csv.reader(io.StringIO(export.usage_csv(by_key))))
    assert table[0][:3] == ["key", "key_prefix", "key_name"]
    lines = [line[:4] for line in table[1:]]
    assert [str(ci.id), ci.prefix, "ci", "3"] in lines
    assert ["", "", "", "1"] in lines  # the jobs no key submitted


@pytest.mark.parametrize("raw", ["key,model", "role,key", "key,policy"])
def test_group_by_key_with_other_dimensions_is_refused(raw: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        group_keys(raw)
    assert refused.value.field == "group_by"


def test_group_by_key_with_day_hour_and_tenant_is_accepted() -> None:
    assert group_keys("tenant,day,key") == [GroupKey.TENANT, GroupKey.DAY, GroupKey.KEY]


def test_the_usage_route_groups_by_key_over_http(
    make_tenant: Callable[..., TenantHandle],
) -> None:
    tenant = make_tenant()
    assert tenant.client.post("/v1/jobs", json={"question": "2+2?", "domain": "math"}).is_success
    job = tenant.client.get("/v1/jobs").json()["data"][0]
    finish_job(job["id"])
    with unit_of_work() as session:
        assert rollups.add_job(session, uuid.UUID(job["id"]))
    found = tenant.client.get("/v1/reports/usage", params={"group_by": "key"})
    assert found.status_code == 200, found.text
    (row,) = found.json()["rows"]
    assert row["key_name"] == "test" and row["key_prefix"] == tenant.key[:12]
    as_csv = tenant.client.get("/v1/reports/usage", params={"group_by": "key", "format": "csv"})
    assert as_csv.text.splitlines()[0].startswith("key,key_prefix,key_name,calls")
    refused = tenant.client.get("/v1/reports/usage", params={"group_by": "key,model"})
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "group_by"
