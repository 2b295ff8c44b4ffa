"""Prometheus metrics of the API and the workers, defined once for every process.

Names follow Prometheus conventions (``_total`` on counters is added by the client, base units
in the name). Labels are bounded: policy, domain, status, role, model, task, queue. A tenant is a
label only when it is on the ``TANDEM_METRICS_TENANTS`` allow-list (every other tenant is
``other``): per-tenant money belongs in the Postgres reports, not in a time-series database.

Counters that describe database state (jobs finished, money reserved or settled, tokens) are
incremented only after the transaction that wrote that state commits (:func:`on_commit`), so a
rolled-back or retried step is never counted.

Prefork Celery workers and multi-process uvicorn run in prometheus_client's multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``, set before this module is first imported: see
:mod:`shared.metrics_dir`);
a single process uses the default registry.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from functools import lru_cache
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from shared.metrics_dir import MULTIPROC_ENV

log = logging.getLogger(__name__)

OTHER_TENANT = "other"
# Engine calls and pipeline steps run from tens of milliseconds to minutes.
SLOW_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
FAST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

JOBS_SUBMITTED = Counter(
    "tandem_jobs_submitted", "Jobs admitted by the API.", ["policy", "domain", "tenant"]
)
JOBS_FINISHED = Counter(
    "tandem_jobs_finished",
    "Jobs that reached a terminal status (succeeded, failed, cancelled).",
    ["policy", "domain", "status"],
)
ADMISSION_REJECTIONS = Counter(
    "tandem_admission_rejections",
    "Submissions refused before a job existed: budget_exceeded, rate_limited, ...",
    ["reason", "tenant"],
)
RESERVED_DOLLARS = Counter("tandem_reserved_dollars", "Money reserved at admission (worst case).")
SETTLED_DOLLARS = Counter("tandem_settled_dollars", "Money charged when jobs settled.")
RELEASED_DOLLARS = Counter("tandem_released_dollars", "Reserved money released when jobs settled.")
TASK_DURATION = Histogram(
    "tandem_task_duration_seconds",
    "Wall time of one pipeline task (a stage step), by task and outcome.",
    ["task", "outcome"],
    buckets=SLOW_BUCKETS,
)
ENGINE_DURATION = Histogram(
    "tandem_engine_request_duration_seconds",
    "Wall time of one engine call as the worker saw it, retries included.",
    ["role", "model"],
    buckets=SLOW_BUCKETS,
)
ENGINE_ERRORS = Counter(
    "tandem_engine_errors", "Engine calls that raised, by error code.", ["role", "model", "error"]
)
TOKENS = Counter(
    "tandem_tokens", "Tokens engines reported, prompt and generated.", ["role", "model", "kind"]
)
COST_DOLLARS = Counter("tandem_cost_dollars", "Money of recorded engine calls.", ["role", "model"])
FLOPS = Counter(
    "tandem_flops", "FLOPs of recorded engine calls (2 · params · tokens).", ["role", "model"]
)
ADMISSION_BATCH = Histogram(
    "tandem_admission_batch_size",
    "Submissions of one tenant admitted in one statement after waiting for their budget's "
    "lane, by outcome (together; alone: they did not all fit, or the server refused the "
    "statement; failed: its connection failed).",
    ["outcome"],
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
MESSAGES_EXPIRED = Counter(
    "tandem_messages_expired",
    "Job messages a worker dropped unstarted past their expiry (TANDEM_TASK_EXPIRES_S): the "
    "queue's backlog outlasted it. awaited: the job still waited for that step, which was sent "
    "again (true), a stale duplicate or a job that was over (false), not known (unknown).",
    ["task", "awaited"],
)
SWEEPS = Counter("tandem_sweeps", "Runs of the sweeper of stale jobs (accounting, from beat).")
SWEPT_JOBS = Counter(
    "tandem_swept_jobs",
    "Stale jobs the sweeper acted on: reannounced (its step sent again), failed (given up as "
    "stuck and settled), resettled (settlement sent again).",
    ["action"],
)
HTTP_DURATION = Histogram(
    "tandem_http_request_duration_seconds",
    "API request wall time by route template, method and status.",
    ["method", "route", "status"],
    buckets=FAST_BUCKETS,
)


def tenant_label(tenant: str, allowed: Iterable[str]) -> str:
    """``tenant`` if it is allow-listed (by name or id), else ``other``: a bounded label."""
    return tenant if tenant in set(allowed) else OTHER_TENANT


def count_rejection(reason: str, tenant: str, allowed: Iterable[str]) -> None:
    """Count a submission refused for ``reason``, labelled with ``tenant`` when allow-listed.

    Counted at once, not after a commit: a refusal writes nothing that could be rolled back.
    """
    ADMISSION_REJECTIONS.labels(reason, tenant_label(tenant, allowed)).inc()


# -- after-commit increments ---------------------------------------------------------------

_PENDING = "tandem_metrics_pending"


def on_commit(session: Session, update: Callable[[], None]) -> None:
    """Run ``update`` once ``session``'s transaction commits; drop it on rollback."""
    # Begin the transaction if nothing has yet, so that a rollback before any SQL still
    # counts as the rollback of the transaction this update belongs to.
    session.connection()
    session.info.setdefault(_PENDING, []).append(update)


@event.listens_for(Session, "after_commit")
def _flush_pending(session: Session) -> None:
    for update in session.info.pop(_PENDING, []):
        try:
            update()
        except Exception:  # a metric must never fail the work it describes
            log.exception("metric update failed")


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, previous_transaction: SessionTransaction) -> None:
    # Every rollback of the outermost transaction, even one that never reached the database;
    # a savepoint rolled back inside it keeps the outer transaction's pending counts.
    if previous_transaction.parent is None:
        session.info.pop(_PENDING, None)


def count_job_finished(session: Session, policy: str, domain: str, status: str) -> None:
    on_commit(session, lambda: JOBS_FINISHED.labels(policy, domain, status).inc())


def count_call(
    session: Session,
    *,
    role: str,
    model: str,
    prompt_tokens: int,
    generated_tokens: int,
    cost: Decimal,
    flops: Decimal,
) -> None:
    def update() -> None:
        TOKENS.labels(role, model, "prompt").inc(prompt_tokens)
        TOKENS.labels(role, model, "generated").inc(generated_tokens)
        COST_DOLLARS.labels(role, model).inc(float(cost))
        FLOPS.labels(role, model).inc(float(flops))

    on_commit(session, update)


def count_money(session: Session, counter: Counter, amount: Decimal) -> None:
    on_commit(session, lambda: counter.inc(float(amount)))


# -- exposition -----------------------------------------------------------------------------


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def mark_process_dead(pid: int) -> None:
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)


class CallbackCollector(Collector):
    """A collector whose samples come from a function at scrape time (e.g. queue depths)."""

    def __init__(self, collect: Callable[[], Iterable[Metric]]) -> None:
        self._collect = collect

    def collect(self) -> Iterator[Metric]:
        yield from self._collect()


@lru_cache(maxsize=1)
def _multiprocess_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def exposition(extra: Iterable[Collector] = ()) -> tuple[bytes, str]:
    """The text exposition of this process family's metrics plus ``extra`` collectors."""
    base = _multiprocess_registry() if multiprocess_dir() else REGISTRY
    body = generate_latest(base)
    extras = list(extra)
    if extras:
        registry = CollectorRegistry(auto_describe=False)
        for collector in extras:
            registry.register(collector)
        body += generate_latest(registry)
    return body, CONTENT_TYPE_LATEST


def serve(port: int, host: str = "0.0.0.0") -> None:  # noqa: S104 - a metrics port is scraped
    """Serve ``/metrics`` on ``port`` from a background thread (the workers' endpoint)."""
    from prometheus_client import start_http_server

    registry = _multiprocess_registry() if multiprocess_dir() else REGISTRY
    start_http_server(port, addr=host, registry=registry)


def gauge(name: str, documentation: str, labels: list[str], samples: Iterable[Any]) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for *values, value in samples:
        family.add_metric([str(v) for v in values], float(value))
    return family
