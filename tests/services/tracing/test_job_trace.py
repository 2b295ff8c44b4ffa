"""One job, one trace: the API's request span and every worker's task spans share the trace id
stored on the job, exported over real OTLP/HTTP to a receiver, and every worker log line of the
job carries it (and the tenant's id).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from shared.settings import DEV_ADMIN_KEY
from tandem.stack.processes import serving_api
from tests.conftest import WorkerPool, start_workers, stop_workers, wait_for_workers
from tests.services.pipeline.support import sim_engines, use_classifier, wait_terminal

pytestmark = pytest.mark.e2e

SERVICES = ["coordinator", "scorer", "executor", "accounting"]


class Receiver(BaseHTTPRequestHandler):
    """The OTLP/HTTP traces endpoint of a collector: keeps (service, trace id, span name)."""

    spans: ClassVar[list[tuple[str, str, str]]] = []
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest.FromString(body)
        found = []
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    found.append((attributes["service.name"], span.trace_id.hex(), span.name))
        with self.lock:
            self.spans.extend(found)
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def collector() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def traced_env(
    collector: str, artifacts_dir: Path, database_url: str, redis_url: str
) -> Iterator[dict[str, str]]:
    with sim_engines(artifacts_dir / "trace-e2e") as engines:
        yield {
            **engines.env(),
            "TANDEM_OTLP_ENDPOINT": collector,
            "OTEL_BSP_SCHEDULE_DELAY": "100",  # export within 0.1 s, not the default 5 s
        }


@pytest.fixture(scope="module")
def workers(traced_env: dict[str, str], artifacts_dir: Path) -> Iterator[WorkerPool]:
    pool = start_workers(SERVICES, artifacts_dir / "trace-e2e", traced_env)
    try:
        wait_for_workers(SERVICES)
        yield pool
    finally:
        stop_workers(pool)


@pytest.fixture(scope="module")
def api(traced_env: dict[str, str], artifacts_dir: Path) -> Iterator[str]:
    with serving_api(traced_env, log=artifacts_dir / "trace-e2e" / "api.log") as (url, _):
        yield url


def test_a_job_is_one_trace_across_the_api_and_every_worker(api: str, workers: WorkerPool) -> None:
    admin = httpx.Client(base_url=api, headers={"X-Admin-Key": DEV_ADMIN_KEY}, timeout=30)
    tenant = admin.post(
        "/v1/admin/tenants", json={"name": f"trace-{time.time_ns()}", "budget_cap": "100"}
    )
    assert tenant.status_code == 201, tenant.text
    tenant_id = tenant.json()["id"]
    key = admin.post(f"/v1/admin/tenants/{tenant.json()['id']}/keys", json={"name": "t"}).json()[
        "key"
    ]
    client = httpx.Client(base_url=api, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    # Level 0 never sufficient, level 1 always: the job passes through every worker, whatever
    # version an earlier test in this database left active.
    use_classifier(1.01, 0.0)
    submitted = client.post("/v1/jobs", json={"question": "What is 2 + 3?", "domain": "math"})
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    assert wait_terminal(job_id, timeout_s=120).status == "succeeded"
    trace_id = client.get(f"/v1/jobs/{job_id}").json()["trace_id"]
    assert trace_id and len(trace_id) == 32

    wanted = {f"tandem-{s}" for s in ["api", *SERVICES]}
    deadline = time.monotonic() + 30
    while True:
        with Receiver.lock:
            services = {service for service, trace, _ in Receiver.spans if trace == trace_id}
        if services >= wanted or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert services >= wanted, f"spans of the job's trace came from {sorted(services)} only"
    with Receiver.lock:
        names = {name for service, trace, name in Receiver.spans if trace == trace_id}
    assert any(name.startswith("run/") for name in names), names  # worker task spans

    for service in SERVICES:
        lines = (workers.logs / f"worker-{service}.log").read_text().splitlines()
        of_job = [line for line in lines if job_id in line]
        assert of_job, service
        in_context = [line for line in of_job if "job_id=" in line]
        assert all(f"trace_id={trace_id}" in line for line in in_context), service
        if service != "accounting":  # it logs nothing of its own on a clean settlement
            # Once a task has loaded the job, its lines (the engine calls) name the tenant.
            assert any(f"tenant_id={tenant_id}" in line for line in in_context), service
