"""Readiness: Postgres answers, Redis answers, and every queue has at least one consumer.

The queue check asks the workers over the broker (``inspect().active_queues()``), which takes
up to its timeout, so its answer is cached for a few seconds and shared by all callers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from celery import Celery
from sqlalchemy import text

from services.api.settings import ApiSettings
from shared.db.session import get_engine
from shared.tasks import Queue


class QueueConsumers:
    def __init__(self, app_factory: Callable[[], Celery], settings: ApiSettings) -> None:
        self._app_factory = app_factory
        self._app: Celery | None = None
        self._settings = settings
        self._lock = threading.Lock()
        self._checked_at = 0.0
        self._consumed: set[str] = set()

    def consumed_queues(self) -> set[str]:
        with self._lock:
            if time.monotonic() - self._checked_at < self._settings.readiness_cache_s:
                return self._consumed
            if self._app is None:
                self._app = self._app_factory()
            replies = self._app.control.inspect(
                timeout=self._settings.readiness_timeout_s
            ).active_queues()
            self._consumed = {
                queue["name"] for queues in (replies or {}).values() for queue in queues
            }
            self._checked_at = time.monotonic()
            return self._consumed


def readiness(
    settings: ApiSettings, client: redis.Redis[bytes], consumers: QueueConsumers
) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    try:
        with get_engine(settings.database_url).connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["postgres"] = "ok"
    except Exception as exc:
        checks["postgres"] = f"error: {type(exc).__name__}"
    try:
        client.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    try:
        consumed = consumers.consumed_queues()
        checks["queues"] = {
            q.value: ("ok" if q.value in consumed else "no consumer") for q in Queue
        }
    except Exception as exc:
        checks["queues"] = f"error: {type(exc).__name__}"
    queues = checks["queues"]
    ready = (
        checks["postgres"] == "ok"
        and checks["redis"] == "ok"
        and isinstance(queues, dict)
        and all(v == "ok" for v in queues.values())
    )
    return {"ready": ready, "checks": checks}
