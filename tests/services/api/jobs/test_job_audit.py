"""GET /v1/jobs/{id}/audit: one job's audit trail, for the tenant that owns the job only."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal

from tests.services.api.conftest import TenantHandle, finish_job

Make = Callable[..., TenantHandle]


def test_audit_lists_every_call_and_event_of_the_owners_job(make_tenant: Make) -> None:
    owner, stranger = make_tenant(), make_tenant()
    accepted = owner.client.post("/v1/jobs", json={"question": "What is 6 * 7?", "domain": "math"})
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["id"]
    charged = finish_job(job_id, answer="42")

    response = owner.client.get(f"/v1/jobs/{job_id}/audit")
    assert response.status_code == 200, response.text
    audit = response.json()
    assert audit["job_id"] == job_id and audit["tenant_id"] == str(owner.id)
    assert audit["status"] == "succeeded" and audit["answer"] == "42"
    assert audit["truncation_level"] == 1 and audit["termination_reason"] == "sufficient"
    assert [(c["role"], c["model"], c["generated_tokens"]) for c in audit["calls"]] == [
        ("coordinator", "gemma3-270m", 20),
        ("executor", "smollm2-135m", 5),
    ]
    assert sum(Decimal(c["cost"]) for c in audit["calls"]) == charged == Decimal(audit["cost"])
    assert audit["events"][0]["kind"] == "submitted"

    # Another tenant cannot tell the job exists; an unknown or malformed id is an error too.
    for client, path, status, code, field in (
        (stranger.client, f"/v1/jobs/{job_id}/audit", 404, "not_found", "id"),
        (owner.client, f"/v1/jobs/{uuid.uuid4()}/audit", 404, "not_found", "id"),
        (owner.client, "/v1/jobs/not-a-uuid/audit", 422, "invalid_request", "job_id"),
    ):
        refused = client.get(path)
        assert refused.status_code == status, path
        error = refused.json()["error"]
        assert (error["code"], error["field"]) == (code, field), path
