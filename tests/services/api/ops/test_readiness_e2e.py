"""/readyz turns ready once a real worker consumes every queue."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from services.api.app import create_app
from services.api.settings import ApiSettings
from shared.tasks import Queue
from tests.conftest import start_workers, stop_workers, wait_for_workers
from tests.services.api.conftest import ServerThread

SERVICES = [queue.value for queue in Queue]


@pytest.mark.e2e
def test_ready_when_every_queue_has_a_consumer(
    api_settings: ApiSettings, redis_url: str, artifacts_dir: Path
) -> None:
    # The workers listen on the shared test Redis db, so this server checks that one.
    settings = api_settings.model_copy(update={"readiness_cache_s": 0.0, "redis_url": redis_url})
    with ServerThread(create_app(settings)) as server:
        pool = start_workers(SERVICES, artifacts_dir / "logs" / "api-readyz")
        try:
            wait_for_workers(SERVICES, timeout_s=120)
            ready = httpx.get(f"{server.url}/readyz", timeout=30)
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"]["queues"] == {q: "ok" for q in SERVICES}
            pool.kill("scorer")
            degraded = httpx.get(f"{server.url}/readyz", timeout=30).json()
            assert degraded["ready"] is False
            assert degraded["checks"]["queues"]["scorer"] == "no consumer"
        finally:
            stop_workers(pool)
