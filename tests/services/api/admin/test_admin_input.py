"""Names Postgres cannot store are refused by the admin routes with a 422, not a 500."""

from __future__ import annotations

import uuid

import httpx
import pytest


@pytest.mark.parametrize("name", ["bad\x00name", "bad\ud800name"])
def test_tenant_name_with_nul_or_surrogate_is_a_422(admin: httpx.Client, name: str) -> None:
    import json

    response = admin.post(
        "/v1/admin/tenants",
        content=json.dumps({"name": name}),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "name"


@pytest.mark.parametrize("name", ["key\x00", "key\udfff"])
def test_key_name_with_nul_or_surrogate_is_a_422(admin: httpx.Client, name: str) -> None:
    import json

    tenant = admin.post("/v1/admin/tenants", json={"name": f"t-{abs(hash(name))}"}).json()
    response = admin.post(
        f"/v1/admin/tenants/{tenant['id']}/keys",
        content=json.dumps({"name": name}),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "name"
    keys = admin.get(f"/v1/admin/tenants/{tenant['id']}/keys").json()
    assert keys == []


def test_a_price_filter_with_nul_is_a_422_not_a_500(admin: httpx.Client) -> None:
    # Found by the fuzz test: Postgres refused the NUL mid-query and the API answered 500.
    response = admin.get("/v1/admin/prices", params={"model": "gpt\x00"})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "model"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"budget_cap": "0.1234567890123"}, "budget_cap"),  # 13 places: would be rounded
        ({"budget_cap": 1e-13}, "budget_cap"),
        ({"max_cost_per_request": "0.0000000000001"}, "max_cost_per_request"),
        ({"soft_alert_ratio": "0.8000000000001"}, "soft_alert_ratio"),
        ({"rate_limit_rpm": True}, "rate_limit_rpm"),  # not read as 1
        ({"max_concurrent_jobs": 2.5}, "max_concurrent_jobs"),
    ],
)
def test_tenant_amounts_past_the_scale_and_non_integer_limits_are_422s(
    admin: httpx.Client, body: dict[str, object], field: str
) -> None:
    name = f"t-{abs(hash(repr(body)))}"
    response = admin.post("/v1/admin/tenants", json={"name": name, **body})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert name not in {t["name"] for t in admin.get("/v1/admin/tenants").json()}


def test_a_tenant_is_not_deactivated_by_a_string(admin: httpx.Client) -> None:
    tenant = admin.post("/v1/admin/tenants", json={"name": f"t-{uuid.uuid4().hex[:8]}"}).json()
    response = admin.patch(f"/v1/admin/tenants/{tenant['id']}", json={"active": "false"})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "active"
    assert admin.get(f"/v1/admin/tenants/{tenant['id']}").json()["active"] is True
