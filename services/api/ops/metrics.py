"""The API's Prometheus endpoint: request timings, and what is read at scrape time.

Queue depth is a property of the broker, not of one process, so it is read from Redis when
Prometheus scrapes (``LLEN`` of each Celery queue: the messages waiting, not those running).
The month's savings share comes from the savings report itself (one computation, the same
figure as ``GET /v1/reports/savings`` for all tenants), and the ledger's broken invariants from
the check ``tandem ledger verify`` makes; both are cached so scrapes stay cheap.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Generic, TypeVar

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
from shared.budgets.service import LEDGER_PROBLEM_KINDS, verify_ledger
from shared.db.session import unit_of_work
from shared.metrics import HTTP_DURATION, CallbackCollector, exposition, gauge
from shared.tasks import Queue

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


Figures = TypeVar("Figures")


class CachedGauges(Collector, Generic[Figures]):
    """Gauges computed from the database at most every ``ttl_s`` seconds: a scrape reads the
    last figures, so scrapes stay cheap however often they come, and a database that does not
    answer leaves the last figures in place."""

    def __init__(self, empty: Figures, ttl_s: float) -> None:
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._at = -ttl_s
        self._figures = empty

    def _compute(self) -> Figures:
        raise NotImplementedError

    def _gauges(self, figures: Figures) -> Iterator[Metric]:
        raise NotImplementedError

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            if time.monotonic() - self._at >= self._ttl_s:
                try:
                    self._figures = self._compute()
                except SQLAlchemyError:
                    log.warning("%s: database unavailable", type(self).__name__, exc_info=True)
                self._at = time.monotonic()
            figures = self._figures
        yield from self._gauges(figures)


SavingsRows = list[tuple[str, str, float | None, int, float]]


class SavingsGauges(CachedGauges[SavingsRows]):
    """The savings report over all tenants for the current month, per domain."""

    def __init__(self, settings: ApiSettings, ttl_s: float = 60.0) -> None:
        super().__init__([], ttl_s)
        self._settings = settings

    def _compute(self) -> SavingsRows:
        now = datetime.now(UTC)
        span = TimeRange(month_start(now), now)
        baseline = load_baseline(self._settings.savings_baseline_file)
        with unit_of_work(self._settings.database_url) as session:
            report = savings_report(
                session, Scope(None), span, baseline, self._settings.savings_min_shadow_jobs
            )
        method = report.estimate.method
        rows: SavingsRows = []
        for domain, figures in report.by_domain.items():
            share = None
            if figures.counterfactual_cost is not None and Decimal(figures.counterfactual_cost):
                share = float(Decimal(figures.tandem_cost) / Decimal(figures.counterfactual_cost))
            measured = figures.shadow_runs / figures.jobs if figures.jobs else 0.0
            rows.append((domain, method, share, figures.sample_size, measured))
        return rows

    def _gauges(self, rows: SavingsRows) -> Iterator[Metric]:
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


LedgerCheck = tuple[float, Counter[str]] | None  # when it last ran, its problems by kind


class LedgerGauges(CachedGauges[LedgerCheck]):
    """The ledger's invariants (``tandem ledger verify``) as gauges: an alert fires the moment
    the books stop balancing. The check reads every budget and ledger entry, so it runs every
    ``TANDEM_LEDGER_CHECK_INTERVAL_S``, not at every scrape."""

    def __init__(self, settings: ApiSettings) -> None:
        super().__init__(None, settings.ledger_check_interval_s)
        self._settings = settings

    def _compute(self) -> LedgerCheck:
        with unit_of_work(self._settings.database_url) as session:
            problems = verify_ledger(session)
        return time.time(), Counter(problem.kind for problem in problems)

    def _gauges(self, check: LedgerCheck) -> Iterator[Metric]:
        checked = [] if check is None else [(check[0],)]
        problems = [] if check is None else [(k, check[1][k]) for k in LEDGER_PROBLEM_KINDS]
        yield gauge(
            "tandem_ledger_problems",
            "Broken ledger invariants at the last check, by kind (budget, key_budget, job): "
            "spent = settled, reserved = open holds, spent <= cap, each job's hold settled "
            "and released in full.",
            ["kind"],
            problems,
        )
        yield gauge(
            "tandem_ledger_checked_timestamp_seconds",
            "When this API process last verified the ledger (Unix time).",
            [],
            checked,
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
    collectors = [
        CallbackCollector(lambda: queue_depths(client)),
        state.savings_gauges,
        state.ledger_gauges,
    ]
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
