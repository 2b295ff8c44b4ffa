"""Process entry points: the Celery workers, Celery beat and the API server."""

from __future__ import annotations

import importlib
import os
import sys
from enum import StrEnum
from typing import Any

import typer

from shared.tasks import Queue


class Service(StrEnum):
    COORDINATOR = "coordinator"
    SCORER = "scorer"
    EXECUTOR = "executor"
    ACCOUNTING = "accounting"
    WEBHOOKS = "webhooks"


def worker(
    service: Service = typer.Argument(..., help="Which service's queue to consume."),
    concurrency: int | None = typer.Option(
        None, help="Tasks run at once: threads or processes (default: settings)."
    ),
    loglevel: str = typer.Option("INFO", help="Celery log level."),
    pool: str | None = typer.Option(
        None, help="Celery pool: threads, prefork or solo (default: TANDEM_WORKER_POOL)."
    ),
) -> None:
    """Run one service's Celery worker on its own queue."""
    from shared.metrics_dir import MULTIPROC_ENV, prepare_multiprocess
    from shared.settings import get_worker_settings

    settings = get_worker_settings()
    pool = pool or settings.worker_pool
    if settings.metrics_port and pool == "prefork" and MULTIPROC_ENV not in os.environ:
        # Pool processes do the work; the main process serves what they all counted.
        if "prometheus_client" in sys.modules:
            raise RuntimeError("prometheus_client was imported before its mode could be chosen")
        prepare_multiprocess(f"worker-{service.value}")
    module = importlib.import_module(f"services.{service.value}.app")
    celery_app = module.app
    argv = [
        "worker",
        f"--queues={Queue(service.value).value}",
        f"--hostname={service.value}@%h",
        f"--loglevel={loglevel}",
        f"--pool={pool}",
        # Cluster events nothing here consumes (health is a task on each queue, control goes
        # through the pidbox): heartbeats every 2 s, gossip and start-up sync with peers.
        "--without-heartbeat",
        "--without-gossip",
        "--without-mingle",
    ]
    if concurrency is not None:
        argv.append(f"--concurrency={concurrency}")
    celery_app.worker_main(argv)


def beat_schedule() -> dict[str, dict[str, Any]]:
    """Every service's periodic tasks, for the one beat."""
    from services.accounting.app import app as accounting
    from services.webhooks.app import beat_schedule as webhooks

    return {**accounting.conf.beat_schedule, **webhooks()}


def beat(
    loglevel: str = typer.Option("INFO", help="Celery log level."),
    schedule: str = typer.Option(
        "celerybeat-schedule", help="File where beat keeps its last-run times."
    ),
) -> None:
    """Run Celery beat: the accounting service's periodic sweeper and roll-ups, and the webhooks
    service's relay of lost deliveries (one beat for all: two would run every task twice)."""
    from services.accounting.app import app as celery_app

    celery_app.conf.beat_schedule = beat_schedule()
    celery_app.start(["beat", f"--loglevel={loglevel}", f"--schedule={schedule}"])


api_app = typer.Typer(help="The job API.", no_args_is_help=True)


@api_app.command("serve")
def serve_api(
    host: str = typer.Option("127.0.0.1", help="Bind address."),
    port: int = typer.Option(8000, help="Port."),
    workers: int = typer.Option(1, help="Uvicorn worker processes."),
) -> None:
    """Serve the FastAPI job API with uvicorn."""
    import uvicorn

    from shared.metrics_dir import MULTIPROC_ENV, prepare_multiprocess

    if workers > 1 and MULTIPROC_ENV not in os.environ:
        # Each uvicorn worker counts in its own files; /metrics sums them all.
        prepare_multiprocess("api")

    uvicorn.run(
        "services.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
    )
