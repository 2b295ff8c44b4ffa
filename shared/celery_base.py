"""The one base Celery configuration every worker service builds on.

Long LLM tasks need: late acks and rejection on worker loss (a killed worker's task is
redelivered, not lost), prefetch 1 (a worker does not hoard tasks it cannot start), time
limits below the broker's visibility timeout (a running task is never redelivered while it
still runs), bounded retries with jittered backoff on transient engine errors, and an expiry on
every message. The settings and their defaults: docs/architecture.md, 'Reliability settings'.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from typing import Any

from celery import Celery, Task, signals
from sqlalchemy.exc import InterfaceError, OperationalError

from shared.broker import TRANSPORT as BROKER_TRANSPORT
from shared.errors import TransientError
from shared.heap import freeze_startup_heap
from shared.logging import configure_logging, log_context
from shared.settings import WorkerSettings, get_worker_settings
from shared.tasks import HEALTH_TASKS, Queue, TaskName
from shared.tracing import configure_tracing
from shared.tracing import shutdown as shutdown_tracing


def celery_config(settings: WorkerSettings, queue: Queue | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "broker_url": settings.redis_url,
        # kombu's Redis transport with one HSET and one HDEL of ack bookkeeping per message
        # instead of two MULTI/EXEC transactions (see shared.broker).
        "broker_transport": BROKER_TRANSPORT,
        "result_backend": settings.redis_url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            "visibility_timeout": settings.visibility_timeout_s,
            # Each worker looks for expired deliveries (a worker killed mid-task) every
            # unacked_restore_interval (10 s): kombu scans only on every 10th look by default,
            # which let a killed worker's message wait up to ~100 s past its visibility
            # timeout. Our scan reads one small hash (shared.broker), so every look scans.
            "unacked_restore_throttle": 1,
        },
        "result_backend_transport_options": {"visibility_timeout": settings.visibility_timeout_s},
        "result_expires": 3600,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": settings.task_soft_time_limit_s,
        "task_time_limit": settings.task_time_limit_s,
        # Pipeline tasks report through Postgres: nothing reads their results, a "started"
        # state or task events, and each would cost Redis commands on every message. Only the
        # health probes, whose senders wait for the answer, store a result.
        "task_ignore_result": True,
        "task_annotations": {
            task.value: {"ignore_result": False} for task in HEALTH_TASKS.values()
        },
        "task_track_started": False,
        "task_send_sent_event": False,
        "worker_send_task_events": False,
        "worker_hijack_root_logger": False,
        "worker_concurrency": settings.worker_concurrency,
        "task_routes": {f"{q.value}.*": {"queue": q.value} for q in Queue},
        "timezone": "UTC",
        "enable_utc": True,
    }
    if queue is not None:
        config["task_default_queue"] = queue.value
    return config


class TandemTask(Task):
    """Base task: bounded, jittered retries on transient errors only."""

    # Postgres unreachable counts as transient too (see shared.jobs.runner.DATABASE_DOWN).
    autoretry_for = (
        TransientError,
        ConnectionError,
        TimeoutError,
        OperationalError,
        InterfaceError,
    )
    retry_backoff = True
    retry_jitter = True

    def __init__(self) -> None:
        settings = get_worker_settings()
        self.max_retries = settings.task_max_retries
        self.retry_backoff_max = settings.task_retry_backoff_max_s

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Every log line a task writes names its job (messages carry ids only).
        started = time.perf_counter()
        outcome = "error"
        try:
            with log_context(job_id=kwargs.get("job_id"), task=self.name):
                result = super().__call__(*args, **kwargs)
            outcome = "ok"
            return result
        finally:
            from shared.metrics import TASK_DURATION

            TASK_DURATION.labels(self.name, outcome).observe(time.perf_counter() - started)


# shared.metrics is imported lazily here: a worker launcher must be able to choose
# prometheus_client's multiprocess mode before the first import (see shared.metrics_dir).


def make_celery(
    name: str,
    *,
    queue: Queue | None = None,
    include: list[str] | None = None,
    settings: WorkerSettings | None = None,
) -> Celery:
    """Build a service's Celery app; ``include`` lists only that service's task modules."""
    settings = settings or get_worker_settings()
    app = Celery(name, include=include or [], task_cls=TandemTask)
    app.conf.update(celery_config(settings, queue))

    @signals.setup_logging.connect(weak=False)
    def _setup_logging(**_: Any) -> None:
        # Replaces Celery's own logging setup in worker processes.
        configure_logging(name, settings)

    if queue is None:
        return app  # a producer: it never runs as a worker
    service = queue.value

    @signals.task_revoked.connect(weak=False)
    def _note_expired(sender: Any = None, request: Any = None, **info: Any) -> None:
        if info.get("expired") and getattr(sender, "app", None) is app:
            from shared.jobs.runner import note_expired  # the runner imports this module

            note_expired(app, sender.name, request)

    @signals.worker_process_init.connect(weak=False)
    def _trace_pool_process(**_: Any) -> None:
        configure_tracing(service, settings)
        freeze_startup_heap()

    @signals.worker_init.connect(weak=False)
    def _freeze_before_pool(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is app:
            freeze_startup_heap()  # before a prefork pool forks: its children share these pages

    @signals.worker_ready.connect(weak=False)
    def _freeze_when_ready(sender: Any = None, **_: Any) -> None:
        # What the consumer built as it started (threads and solo pools run tasks here).
        if getattr(sender, "app", None) is app:
            freeze_startup_heap()

    @signals.worker_process_shutdown.connect(weak=False)
    def _flush_traces(**_: Any) -> None:
        shutdown_tracing()

    @signals.worker_init.connect(weak=False)
    def _trace_solo_worker(sender: Any = None, **_: Any) -> None:
        # A prefork worker traces in its pool processes (above); solo and thread pools run
        # tasks in this process.
        pool = getattr(sender, "pool_cls", "")
        pool_name = pool if isinstance(pool, str) else getattr(pool, "__module__", "")
        if getattr(sender, "app", None) is app and "prefork" not in pool_name:
            configure_tracing(service, settings)

    @signals.worker_init.connect(weak=False)
    def _serve_metrics(sender: Any = None, **_: Any) -> None:
        if settings.metrics_port and getattr(sender, "app", None) is app:
            from shared.metrics import serve

            serve(settings.metrics_port)

    @signals.worker_process_shutdown.connect(weak=False)
    def _forget_process(pid: int | None = None, **_: Any) -> None:
        from shared.metrics import mark_process_dead

        mark_process_dead(pid or os.getpid())

    return app


def producer_app(settings: WorkerSettings | None = None) -> Celery:
    """A Celery app with no tasks, for processes that only send by name (API, CLI, sweeper)."""
    return make_celery("tandem-producer", settings=settings)


def send(
    app: Celery,
    name: TaskName,
    kwargs: Mapping[str, Any],
    *,
    countdown: float | None = None,
    settings: WorkerSettings | None = None,
) -> str:
    """Send a task by name to its queue, always with an expiry; returns the task id."""
    settings = settings or get_worker_settings()
    result = app.send_task(
        name.value,
        kwargs=dict(kwargs),
        queue=name.queue.value,
        expires=settings.task_expires_s,
        countdown=countdown,
        # Without this the producer subscribes to a result channel nobody will publish on.
        ignore_result=not name.replies,
        # Nothing to declare: messages go to the queue's list by name (the default exchange),
        # and each worker declares its own queue when it starts.
        declare=(),
    )
    return str(result.id)


def health_payload(service: str) -> dict[str, str]:
    """What a health task answers: proves a worker of ``service`` consumed from its queue."""
    return {"service": service, "status": "ok", "hostname": socket.gethostname()}
