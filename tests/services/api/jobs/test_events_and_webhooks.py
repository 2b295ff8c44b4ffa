"""SSE progress stream and signed webhooks, with real HTTP on both sides."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from shared.db.models import JobEvent
from shared.db.session import unit_of_work
from tests.services.api.conftest import TenantHandle, finish_job

Make = Callable[..., TenantHandle]


def add_event(job_id: str, kind: str, level: int | None = None, **data: Any) -> None:
    with unit_of_work() as session:
        session.execute(
            insert(JobEvent).values(job_id=uuid.UUID(job_id), kind=kind, level=level, data=data)
        )


def read_sse(response: httpx.Response) -> Iterator[tuple[str, str, str]]:
    """(id, event, data) of each SSE message."""
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if not line:
            if "data" in fields:
                yield fields.get("id", ""), fields.get("event", "message"), fields["data"]
            fields = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        fields[name] = value.lstrip(" ")


def test_events_stream_progress_until_done(make_tenant: Make) -> None:
    tenant = make_tenant()
    job_id = tenant.client.post("/v1/jobs", json={"question": "q", "domain": "code"}).json()["id"]

    def progress() -> None:
        time.sleep(0.5)
        add_event(job_id, "level_reached", level=1, tokens=128)
        add_event(job_id, "scored", level=1, score=0.91)
        time.sleep(0.3)
        # Events are written before (or with) the terminal status, as the pipeline does: a
        # stream that sees the job over has every event it will ever get.
        add_event(job_id, "answer", answer="done")
        finish_job(job_id, answer="done")

    worker = threading.Thread(target=progress)
    worker.start()
    received: list[tuple[str, str, str]] = []
    with tenant.client.stream("GET", f"/v1/jobs/{job_id}/events", timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for message in read_sse(response):
            received.append(message)
            if message[1] == "done":
                break
    worker.join()
    kinds = [event for _, event, _ in received]
    assert kinds == ["submitted", "level_reached", "scored", "answer", "done"]
    scored = json.loads(received[2][2])
    assert scored["level"] == 1 and scored["data"] == {"score": 0.91}
    assert json.loads(received[-1][2]) == {"status": "succeeded"}
    # Resuming after the second event replays only what followed it.
    with tenant.client.stream(
        "GET", f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": received[1][0]}
    ) as response:
        resumed = [event for _, event, _ in read_sse(response)]
    assert resumed == ["scored", "answer", "done"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5432/",
        "http://localhost:8000/v1/admin/tenants",
        "http://0.0.0.0/",
        "http://[::ffff:127.0.0.1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.8/hook",
        "http://2130706433/",
        "http://0177.0.0.1/",
    ],
)
def test_webhook_urls_on_local_networks_are_refused(make_tenant: Make, url: str) -> None:
    tenant = make_tenant()
    response = tenant.client.post(
        "/v1/jobs", json={"question": "q", "domain": "math", "webhook_url": url}
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "webhook_url"
    assert "not public" in error["message"] or "local" in error["message"]


def test_a_public_webhook_url_is_accepted(make_tenant: Make) -> None:
    tenant = make_tenant()
    response = tenant.client.post(
        "/v1/jobs",
        json={"question": "q", "domain": "math", "webhook_url": "https://hooks.example.com/t"},
    )
    assert response.status_code == 202, response.text
