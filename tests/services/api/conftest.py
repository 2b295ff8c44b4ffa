"""A real uvicorn server running the API against the test Postgres and Redis."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
import redis
import uvicorn
from sqlalchemy import update

from services.api.app import create_app
from services.api.settings import ApiSettings
from shared.budgets import settle
from shared.celery_base import producer_app
from shared.db.models import ClassifierModel, Job, JobStatus, ModelCall
from shared.db.session import unit_of_work
from shared.settings import DEV_ADMIN_KEY
from shared.tasks import Queue


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerThread:
    def __init__(self, app: Any) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


API_REDIS_DB = 11  # 12: worker-health tests; the shared test db is one of 1..10 (tests/conftest.py)


def purge_queues(redis_url: str) -> None:
    """Drop the first tasks our submissions published (no pipeline consumes them here)."""
    app = producer_app(ApiSettings(redis_url=redis_url))
    try:
        with app.connection_for_write() as connection:
            for queue in Queue:
                connection.default_channel.queue_purge(queue.value)
    finally:
        app.close()


@pytest.fixture(scope="session")
def api_redis_url(redis_url: str) -> str:
    """The API tests' own Redis db: their jobs' first tasks never reach a worker that another
    test module (or a concurrent run) has started on the shared test db."""
    url = f"{redis_url.rsplit('/', 1)[0]}/{API_REDIS_DB}"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture(scope="session")
def api_settings(database_url: str, api_redis_url: str) -> ApiSettings:
    # The active classifier's schedule is read on every admission: an activation in a test
    # applies to its next request.
    return ApiSettings(
        database_url=database_url, redis_url=api_redis_url, chat_wait_s=30, classifier_refresh_s=0
    )


@pytest.fixture(autouse=True)
def no_classifier_active(request: pytest.FixtureRequest) -> None:
    """The API tests admit by the configured levels: no version another test module left
    active may impose its schedule (the live pipeline activates its own before this runs)."""
    if "live_api" in request.fixturenames or "database_url" not in request.fixturenames:
        return
    request.getfixturevalue("database_url")  # the per-process test database, set up first
    with unit_of_work() as session:
        session.execute(
            update(ClassifierModel).where(ClassifierModel.active.is_(True)).values(active=False)
        )


@pytest.fixture(scope="session")
def server(api_settings: ApiSettings) -> Iterator[ServerThread]:
    with ServerThread(create_app(api_settings)) as running:
        yield running
    purge_queues(api_settings.redis_url)


@pytest.fixture
def admin(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url, headers={"X-Admin-Key": DEV_ADMIN_KEY}, timeout=30
    ) as client:
        yield client


@dataclass
class TenantHandle:
    id: uuid.UUID
    name: str
    key: str
    webhook_secret: str
    client: httpx.Client


@pytest.fixture
def make_tenant(server: ServerThread) -> Iterator[Callable[..., TenantHandle]]:
    clients: list[httpx.Client] = []

    def make(**limits: Any) -> TenantHandle:
        limits.setdefault("budget_cap", "100")
        admin = httpx.Client(base_url=server.url, headers={"X-Admin-Key": DEV_ADMIN_KEY})
        name = f"api-{uuid.uuid4().hex[:10]}"
        created = admin.post("/v1/admin/tenants", json={"name": name, **limits})
        assert created.status_code == 201, created.text
        tenant = created.json()
        issued = admin.post(f"/v1/admin/tenants/{tenant['id']}/keys", json={"name": "test"})
        assert issued.status_code == 201, issued.text
        admin.close()
        key = issued.json()["key"]
        client = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
        clients.append(client)
        return TenantHandle(uuid.UUID(tenant["id"]), name, key, tenant["webhook_secret"], client)

    yield make
    for client in clients:
        client.close()


def finish_job(
    job_id: uuid.UUID | str,
    *,
    answer: str = "42",
    calls: tuple[tuple[str, str, int, int, str], ...] = (
        ("coordinator", "gemma3-270m", 30, 20, "0.0001"),
        ("executor", "smollm2-135m", 60, 5, "0.00001"),
    ),
    status: JobStatus = JobStatus.SUCCEEDED,
) -> Decimal:
    """Complete a job the way the pipeline does: model calls, outcome, then settlement."""
    job_id = uuid.UUID(str(job_id))
    total = Decimal(0)
    with unit_of_work() as session:
        for step, (role, model, prompt, generated, cost) in enumerate(calls):
            session.add(
                ModelCall(
                    job_id=job_id,
                    step=f"step-{step}",
                    role=role,
                    model=model,
                    engine="test",
                    level=step,
                    prompt_tokens=prompt,
                    generated_tokens=generated,
                    cost=Decimal(cost),
                    finish_reason="eos_token",
                )
            )
            total += Decimal(cost)
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(
                status=status.value,
                answer=answer if status is JobStatus.SUCCEEDED else None,
                truncation_level=1,
                termination_reason="sufficient",
                finished_at=Job.created_at,
                started_at=Job.created_at,
            )
        )
        settle(session, job_id, total)
    return total
