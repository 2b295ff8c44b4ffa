"""Receivers on loopback (real HTTP servers) and finished jobs waiting for settlement."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from shared.db.models import Domain, Job, JobStatus, Tenant
from shared.db.session import unit_of_work
from shared.egress import EgressSettings
from shared.tenants.service import create_tenant

# The receivers run on loopback, which the egress policy refuses unless allowlisted.
LOOPBACK_ALLOWED = EgressSettings(egress_allow_hosts=["127.0.0.1"])


@dataclass
class Receiver:
    url: str
    fail_first: int = 0  # answer 503 to this many requests, then 204
    received: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append((body, dict(self.headers)))
            failing = len(state.received) <= state.fail_first
            self.send_response(503 if failing else 204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def silent_receiver() -> Iterator[str]:
    """A receiver that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"


def settling_job(webhook_url: str | None) -> tuple[uuid.UUID, str]:
    """A job of a new tenant that has its answer and waits for settlement; (id, secret)."""
    with unit_of_work() as session:
        tenant: Tenant = create_tenant(session, f"hooks-{uuid.uuid4().hex[:10]}")
        job = Job(
            id=uuid.uuid4(),
            tenant_id=tenant.id,
            status=JobStatus.SETTLING.value,
            domain=Domain.MATH.value,
            question="What is 6 * 7?",
            levels=[0],
            max_answer_tokens=16,
            prompt_version="test",
            answer="42",
            webhook_url=webhook_url,
        )
        session.add(job)
        return job.id, tenant.webhook_secret
