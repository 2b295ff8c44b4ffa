"""The API's /metrics: what a platform team alerts on, read as Prometheus would read it."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from services.api.settings import ApiSettings
from shared.tasks import Queue
from tests.services.api.conftest import ServerThread, TenantHandle
from tests.services.api.jobs.test_jobs import Make, queue_length, submit


def sample(server: ServerThread, name: str, **labels: str) -> float:
    """The value of one sample (0 when the series does not exist yet)."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def test_submission_and_refusal_are_counted(server: ServerThread, make_tenant: Make) -> None:
    labels = {"policy": "tandem", "domain": "math", "tenant": "other"}
    submitted = sample(server, "tandem_jobs_submitted_total", **labels)
    reserved = sample(server, "tandem_reserved_dollars_total")
    refused = sample(
        server, "tandem_admission_rejections_total", reason="budget_exceeded", tenant="other"
    )

    rich: TenantHandle = make_tenant()
    assert submit(rich).status_code == 202
    poor: TenantHandle = make_tenant(budget_cap="0.00001")
    assert submit(poor).status_code == 402

    assert sample(server, "tandem_jobs_submitted_total", **labels) == submitted + 1
    assert sample(server, "tandem_reserved_dollars_total") > reserved
    assert (
        sample(
            server, "tandem_admission_rejections_total", reason="budget_exceeded", tenant="other"
        )
        == refused + 1
    )


def test_queue_depth_is_read_from_the_broker(
    server: ServerThread, make_tenant: Make, api_settings: ApiSettings
) -> None:
    assert submit(make_tenant()).status_code == 202
    waiting = queue_length(api_settings)  # no worker consumes in these tests
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    depths = {
        s.labels["queue"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "tandem_queue_depth"
    }
    assert set(depths) == {queue.value for queue in Queue}
    assert {"coordinator", "scorer", "executor", "accounting"} <= set(depths)
    assert sum(depths.values()) == waiting >= 1
    assert sample(server, "tandem_broker_up") == 1


def test_requests_are_timed_under_their_route_template(
    server: ServerThread, make_tenant: Make
) -> None:
    tenant = make_tenant()
    route = {"method": "GET", "route": "/v1/jobs/{job_id}", "status": "404"}
    before = sample(server, "tandem_http_request_duration_seconds_count", **route)
    missing = tenant.client.get("/v1/jobs/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    assert sample(server, "tandem_http_request_duration_seconds_count", **route) == before + 1
