"""The API's Prometheus endpoint: request timings, and what is read at scrape time.

Queue depth is a property of the broker, not of one process, so it is read from Redis when
Prometheus scrapes (``LLEN`` of each Celery queue: the messages waiting, not those running).
The month's savings share comes from the savings report itself (one computation, the same
figure as ``GET /v1/reports/savings`` for all tenants), cached so scrapes stay cheap.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import redis
from fastapi import APIRouter, Request, Response
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Send
from starlette.types import Scope as AsgiScope

from services.api.reports.baseline import load_baseline
from services.api.reports.params import Scope, TimeRange, month_start
from services.api.reports.service import savings_report
from services.api.settings import ApiSettings
from shared.db.session import unit_of_work
from shared.metrics import HTTP_DURATION, CallbackCollector, exposition, gauge
from shared.tasks import Queue

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


class SavingsGauges(Collector):
    """The savings report over all tenants for the current month, per domain, cached."""

    def __init__(self, settings: ApiSettings, ttl_s: float = 60.0) -> None:
        self._settings = settings
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._at = -ttl_s
        self._rows: list[tuple[str, str, float | None, int, float]] = []

    def _compute(self) -> list[tuple[str, str, float | None, int, float]]:
        now = datetime.now(UTC)
        span = TimeRange(month_start(now), now)
        baseline = load_baseline(self._settings.savings_baseline_file)
        with unit_of_work(self._settings.database_url) as session:
            report = savings_report(
                session, Scope(None), span, baseline, self._settings.savings_min_shadow_jobs
            )
        method = report.estimate.method
        rows: list[tuple[str, str, float | None, int, float]] = []
        for domain, figures in report.by_domain.items():
            share = None
            if figures.counterfactual_cost is not None and Decimal(figures.counterfactual_cost):
                share = float(Decimal(figures.tandem_cost) / Decimal(figures.counterfactual_cost))
            measured = figures.shadow_runs / figures.jobs if figures.jobs else 0.0
            rows.append((domain, method, share, figures.sample_size, measured))
        return rows

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            if time.monotonic() - self._at >= self._ttl_s:
                try:
                    self._rows = self._compute()
                except SQLAlchemyError:
                    log.warning("savings gauges: database unavailable", exc_info=True)
                self._at = time.monotonic()
            rows = self._rows
        yield gauge(
            "tandem_savings_cost_share",
            "Tandem's cost over the coordinator-alone estimate this month (all tenants).",
            ["domain", "method"],
            [(d, m, share) for d, m, share, _, _ in rows if share is not None],
        )
        yield gauge(
            "tandem_savings_sample_size",
            "Jobs or evaluation questions behind the coordinator-alone estimate.",
            ["domain", "method"],
            [(d, m, n) for d, m, _, n, _ in rows],
        )
        yield gauge(
            "tandem_savings_shadow_share",
            "Share of this month's succeeded tandem jobs measured by a shadow run (all tenants).",
            ["domain"],
            [(d, measured) for d, _, _, _, measured in rows],
        )


def queue_depths(client: redis.Redis[bytes]) -> Iterator[Metric]:
    try:
        depths = [(queue.value, client.llen(queue.value)) for queue in Queue]
        up = 1
    except redis.RedisError:
        depths, up = [], 0
    yield gauge("tandem_queue_depth", "Messages waiting in each Celery queue.", ["queue"], depths)
    yield gauge("tandem_broker_up", "1 when the broker answered this scrape.", [], [(up,)])


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    state = request.app.state
    client = state.redis
    collectors = [CallbackCollector(lambda: queue_depths(client)), state.savings_gauges]
    body, content_type = await run_in_threadpool(exposition, collectors)
    return Response(body, media_type=content_type)


class RequestTimer:
    """Observe each request's wall time under its route template (bounded label values)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            HTTP_DURATION.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started
            )
