"""SSE progress stream and signed webhooks, with real HTTP on both sides."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select

from shared.db.models import JobEvent
from shared.db.session import unit_of_work
from shared.webhooks import SIGNATURE_HEADER, WebhookSettings, deliver_webhook, verify_signature
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
        finish_job(job_id, answer="done")
        add_event(job_id, "answer", answer="done")

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


class Receiver(BaseHTTPRequestHandler):
    bodies: list[tuple[bytes, dict[str, str]]] = []
    failures_left = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).bodies.append((body, dict(self.headers)))
        if type(self).failures_left > 0:
            type(self).failures_left -= 1
            self.send_response(503)
        else:
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[Receiver]]]:
    handler = type("Handler", (Receiver,), {"bodies": [], "failures_left": 1})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    finally:
        server.shutdown()


def test_webhook_is_signed_and_retried(
    make_tenant: Make, receiver: tuple[str, type[Receiver]]
) -> None:
    url, handler = receiver
    tenant = make_tenant()
    job_id = tenant.client.post(
        "/v1/jobs", json={"question": "q", "domain": "math", "webhook_url": url}
    ).json()["id"]
    finish_job(job_id, answer="7")
    delays: list[float] = []
    delivery = deliver_webhook(job_id, settings=WebhookSettings(), sleep=delays.append)
    assert delivery is not None and delivery.delivered and delivery.attempts == 2
    assert delays == [WebhookSettings().webhook_backoff_s]
    body, headers = handler.bodies[-1]
    assert verify_signature(tenant.webhook_secret, body, headers[SIGNATURE_HEADER])
    assert not verify_signature("another-secret", body, headers[SIGNATURE_HEADER])
    assert not verify_signature(tenant.webhook_secret, body + b" ", headers[SIGNATURE_HEADER])
    sent = json.loads(body)
    assert sent["job"]["id"] == job_id and sent["job"]["answer"] == "7"
    with unit_of_work() as session:
        kinds = list(
            session.execute(
                select(JobEvent.kind).where(JobEvent.job_id == uuid.UUID(job_id))
            ).scalars()
        )
    assert "webhook_delivered" in kinds


def test_webhook_gives_up_after_bounded_attempts(make_tenant: Make) -> None:
    tenant = make_tenant()
    job_id = tenant.client.post(
        "/v1/jobs",
        json={"question": "q", "domain": "math", "webhook_url": "http://127.0.0.1:9/closed"},
    ).json()["id"]
    finish_job(job_id)
    settings = WebhookSettings(webhook_attempts=3, webhook_timeout_s=1)
    delays: list[float] = []
    delivery = deliver_webhook(job_id, settings=settings, sleep=delays.append)
    assert delivery is not None and not delivery.delivered and delivery.attempts == 3
    assert delays == [1.0, 2.0]


def test_no_webhook_url_means_no_delivery(make_tenant: Make) -> None:
    tenant = make_tenant()
    job_id = tenant.client.post("/v1/jobs", json={"question": "q", "domain": "math"}).json()["id"]
    assert deliver_webhook(job_id) is None
