"""Hostile input on the job routes: each is a 4xx JSON error that names what was wrong, and the
job routes keep answering afterwards (none of these may leave a job that reads as a 500)."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from tests.services.api.conftest import TenantHandle
from tests.services.api.jobs.test_jobs import QUESTION, Make, jobs_of, submit


def assert_error(response: httpx.Response, status: int, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] and error["message"]
    if field is not None:
        assert error["field"] is not None and error["field"].startswith(field), error


def nested(depth: int) -> dict[str, object]:
    value: dict[str, object] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize("depth", [33, 256, 300])
def test_deep_metadata_is_refused_and_reads_stay_healthy(make_tenant: Make, depth: int) -> None:
    tenant = make_tenant()
    assert_error(submit(tenant, metadata=nested(depth)), 422, "metadata")
    assert jobs_of(tenant) == 0
    accepted = submit(tenant, metadata=nested(32))
    assert accepted.status_code == 202, accepted.text
    job = tenant.client.get(f"/v1/jobs/{accepted.json()['id']}")
    assert job.status_code == 200 and job.json()["metadata"] == nested(32)


def test_json_nested_past_the_parser_limit_is_a_4xx(make_tenant: Make) -> None:
    tenant = make_tenant()
    body = '{"question": "q", "domain": "math", "metadata": ' + '{"a": ' * 5000 + "1"
    body += "}" * 5001
    response = tenant.client.post(
        "/v1/jobs", content=body, headers={"Content-Type": "application/json"}
    )
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]["code"]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"question": "q", "domain": "math", "metadata": {"k": "\\ud800"}}', "metadata"),
        ('{"question": "q", "domain": "math", "metadata": {"\\udfff": 1}}', "metadata"),
        ('{"question": "q\\ud800", "domain": "math"}', "question"),
        ('{"question": "q", "domain": "math", "metadata": {"k": ["\\u0000"]}}', "metadata"),
    ],
)
def test_text_postgres_cannot_store_is_refused(make_tenant: Make, raw: str, field: str) -> None:
    tenant = make_tenant()
    response = tenant.client.post(
        "/v1/jobs", content=raw, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 422, field)
    assert jobs_of(tenant) == 0


def _accepted_job(tenant: TenantHandle) -> str:
    accepted = submit(tenant)
    assert accepted.status_code == 202, accepted.text
    return str(accepted.json()["id"])


@pytest.mark.parametrize("last_event_id", ["²", "1" * 5000, str(2**63), "-1", "1e3"])
def test_bad_last_event_id_is_a_422(make_tenant: Make, last_event_id: str) -> None:
    tenant = make_tenant()
    job_id = _accepted_job(tenant)
    response = tenant.client.get(
        f"/v1/jobs/{job_id}/events",
        headers={b"Last-Event-ID": last_event_id.encode("utf-8")},
    )
    assert_error(response, 422, "Last-Event-ID")


def _cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "forged",
    [
        ["2026-01-01T00:00:00+00:00", 5],
        ["2026-01-01T00:00:00+00:00", [1, 2]],
        ["2026-01-01T00:00:00+00:00", {"id": 1}],
        [5, "00000000-0000-0000-0000-000000000000"],
        {"a": 1},
        "text",
    ],
)
def test_forged_cursor_is_a_422(make_tenant: Make, forged: object) -> None:
    tenant = make_tenant()
    response = tenant.client.get("/v1/jobs", params={"cursor": _cursor(forged)})
    assert_error(response, 422, "cursor")


def test_replay_with_another_body_names_the_key(make_tenant: Make) -> None:
    tenant = make_tenant()
    headers = {"Idempotency-Key": "order-77"}
    first = tenant.client.post(
        "/v1/jobs", json={"question": QUESTION, "domain": "math"}, headers=headers
    )
    assert first.status_code == 202, first.text
    for change in (
        {"max_cost": "0.5"},
        {"levels": [0, 16]},
        {"max_answer_tokens": 64},
        {"metadata": {"k": 1}},
        {"allow_shrink": False},
    ):
        again = tenant.client.post(
            "/v1/jobs", json={"question": QUESTION, "domain": "math", **change}, headers=headers
        )
        assert again.status_code == 409, (change, again.text)
        error = again.json()["error"]
        assert error["field"] == "Idempotency-Key"
        assert error["idempotency_key"] == "order-77" and "order-77" in error["message"]
    same = tenant.client.post(
        "/v1/jobs", json={"domain": "math", "question": QUESTION}, headers=headers
    )
    assert same.status_code == 202 and same.json()["id"] == first.json()["id"]
    assert jobs_of(tenant) == 1
    # The same amount written two ways is the same request.
    priced = {"question": QUESTION, "domain": "math", "max_cost": "0.5"}
    key = {"Idempotency-Key": "order-78"}
    one = tenant.client.post("/v1/jobs", json=priced, headers=key)
    two = tenant.client.post("/v1/jobs", json={**priced, "max_cost": "0.50"}, headers=key)
    assert one.status_code == two.status_code == 202 and one.json()["id"] == two.json()["id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"levels": [False, True]}, "levels"),  # not silently read as [0, 1]
        ({"levels": [0, 32.0]}, "levels"),
        ({"levels": [0, "32"]}, "levels"),
        ({"policy": "fixed_level", "level": True}, "level"),
        ({"max_levels": "2"}, "max_levels"),
        ({"max_answer_tokens": 64.5}, "max_answer_tokens"),
        ({"max_answer_tokens": 0}, "max_answer_tokens"),  # not the largest budget
        ({"max_cost": "0.0000000000001"}, "max_cost"),  # 13 places: would be stored as 0
        ({"max_cost": 1e-13}, "max_cost"),
        ({"allow_shrink": "no"}, "allow_shrink"),  # not read as false
        ({"stream_answer": 1}, "stream_answer"),
    ],
)
def test_counts_flags_and_amounts_must_be_what_they_say(
    make_tenant: Make, body: dict[str, object], field: str
) -> None:
    tenant = make_tenant()
    assert_error(submit(tenant, **body), 422, field)
    assert jobs_of(tenant) == 0


def test_an_amount_with_trailing_zeros_past_the_scale_is_accepted(make_tenant: Make) -> None:
    tenant = make_tenant(budget_cap="10")
    accepted = submit(tenant, max_cost="5.00000000000000000")  # the same amount as 5
    assert accepted.status_code == 202, accepted.text
