"""The alert routes and the tenant's alert settings, through the real API server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from shared.budgets import settle
from shared.db.session import unit_of_work
from tests.services.api.conftest import TenantHandle
from tests.shared.alerts.conftest import held_jobs


def as_json(body: dict[str, str]) -> dict[str, Any]:
    """The body as JSON text: httpx cannot encode a lone surrogate, a JSON escape can."""
    return {"content": json.dumps(body), "headers": {"Content-Type": "application/json"}}


def cross_soft_threshold(tenant: TenantHandle) -> uuid.UUID:
    """Settle a job that takes the tenant (cap 1, soft 0.5) past its soft threshold."""
    (job_id,) = held_jobs(tenant.id, ["0.6"])
    with unit_of_work() as session:
        (alert,) = settle(session, job_id, Decimal("0.6")).alerts
    return alert.id


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.7/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:127.0.0.1]/hook",
        "http://localhost:8080/hook",
        "http://2130706433/hook",
        "ftp://alerts.example.com/hook",
        "https://alerts.example.com/\x00hook",
        "https://alerts.example.com/\ud800",
        "https://alerts.example.com/a hook",
    ],
)
def test_a_hostile_alert_url_is_a_422_and_nothing_is_written(admin: httpx.Client, url: str) -> None:
    name = f"hostile-{uuid.uuid4().hex[:10]}"
    created = admin.post("/v1/admin/tenants", **as_json({"name": name, "alert_url": url}))
    assert created.status_code == 422, created.text
    assert created.json()["error"]["field"] == "alert_url"
    assert name not in {t["name"] for t in admin.get("/v1/admin/tenants").json()}

    tenant = admin.post("/v1/admin/tenants", json={"name": name}).json()
    patched = admin.patch(
        f"/v1/admin/tenants/{tenant['id']}", **as_json({"alert_url": url, "budget_cap": "5"})
    )
    assert patched.status_code == 422, patched.text
    assert patched.json()["error"]["field"] == "alert_url"
    after = admin.get(f"/v1/admin/tenants/{tenant['id']}").json()
    assert (after["alert_url"], after["budget_cap"]) == (None, "0")


def test_alert_settings_are_kept_and_an_empty_url_removes_it(admin: httpx.Client) -> None:
    tenant = admin.post(
        "/v1/admin/tenants",
        json={
            "name": f"alerts-{uuid.uuid4().hex[:10]}",
            "soft_alert_ratio": "0.7",
            "hard_alert_ratio": "0.95",
            "alert_url": "https://alerts.example.com/tandem",
        },
    ).json()
    assert (tenant["soft_alert_ratio"], tenant["hard_alert_ratio"]) == ("0.7", "0.95")
    assert tenant["alert_url"] == "https://alerts.example.com/tandem"
    cleared = admin.patch(f"/v1/admin/tenants/{tenant['id']}", json={"alert_url": ""})
    assert cleared.json()["alert_url"] is None
    inverted = admin.patch(f"/v1/admin/tenants/{tenant['id']}", json={"hard_alert_ratio": "0.5"})
    assert inverted.status_code == 422, inverted.text
    assert inverted.json()["error"]["field"] == "soft_alert_ratio"


def test_a_tenant_lists_its_own_alerts_and_the_operator_every_tenants(
    admin: httpx.Client, make_tenant: Callable[..., TenantHandle]
) -> None:
    first = make_tenant(budget_cap="1", soft_alert_ratio="0.5")
    second = make_tenant(budget_cap="1", soft_alert_ratio="0.5")
    first_alert, second_alert = cross_soft_threshold(first), cross_soft_threshold(second)

    own = first.client.get("/v1/alerts")
    assert own.status_code == 200, own.text
    (alert,) = own.json()["data"]
    assert alert["id"] == str(first_alert)
    assert (alert["threshold"], alert["ratio"], alert["cap"], alert["spent"]) == (
        "soft",
        "0.5",
        "1",
        "0.6",
    )
    assert alert["delivery"] is None  # no alert_url: listed, not sent
    assert "operator_delivery" not in alert and "tenant_name" not in alert

    everyone = {
        a["id"] for a in admin.get("/v1/admin/alerts", params={"limit": 500}).json()["data"]
    }
    assert {str(first_alert), str(second_alert)} <= everyone
    (only,) = admin.get("/v1/admin/alerts", params={"tenant_id": str(second.id)}).json()["data"]
    assert (only["id"], only["tenant_name"]) == (str(second_alert), second.name)

    assert first.client.get("/v1/admin/alerts").status_code in (401, 403)
    bad_limit = first.client.get("/v1/alerts", params={"limit": 0})
    assert bad_limit.status_code == 422
    assert bad_limit.json()["error"]["field"] == "limit"


def test_a_key_takes_its_own_alert_ratios_within_order(admin: httpx.Client) -> None:
    tenant = admin.post(
        "/v1/admin/tenants",
        json={"name": f"keys-{uuid.uuid4().hex[:10]}", "budget_cap": "10"},
    ).json()
    keys = f"/v1/admin/tenants/{tenant['id']}/keys"
    created = admin.post(keys, json={"budget_cap": "1", "soft_alert_ratio": "0.6"})
    assert created.status_code == 201, created.text
    key = created.json()
    assert (key["soft_alert_ratio"], key["hard_alert_ratio"]) == ("0.6", None)
    # A hard threshold below the key's soft one is refused, and nothing changes.
    inverted = admin.patch(f"/v1/admin/keys/{key['id']}", json={"hard_alert_ratio": "0.5"})
    assert inverted.status_code == 422, inverted.text
    assert inverted.json()["error"]["field"] == "soft_alert_ratio"
    assert admin.get(f"/v1/admin/keys/{key['id']}").json()["hard_alert_ratio"] is None
    cleared = admin.patch(f"/v1/admin/keys/{key['id']}", json={"soft_alert_ratio": None})
    assert cleared.json()["soft_alert_ratio"] is None  # the tenant's again
