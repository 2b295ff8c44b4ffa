"""Tasks of the accounting service. Thin: each calls a plain function
that tests can call directly."""

from __future__ import annotations

from typing import Any

from celery import Task

from services.accounting import service
from services.accounting.app import app
from services.accounting.settings import get_accounting_settings
from shared.broker import backlog
from shared.celery_base import health_payload
from shared.jobs.flow import publish
from shared.jobs.runner import run_step
from shared.tasks import Queue, TaskName


@app.task(name=TaskName.ACCOUNTING_HEALTH.value, shared=False)
def health() -> dict[str, str]:
    return health_payload("accounting")


@app.task(name=TaskName.ACCOUNTING_SETTLE.value, shared=False, bind=True)
def settle_job(self: Task, job_id: str) -> dict[str, Any]:
    return run_step(self, app, job_id, lambda: service.settle_job(job_id))


def queue_backlog(queue: Queue) -> int:
    """Messages of ``queue`` on the broker, waiting or delivered and not yet acked."""
    with app.connection_for_read() as connection:
        return backlog(connection.default_channel.client, queue.value)


@app.task(name=TaskName.ACCOUNTING_SWEEP.value, shared=False)
def sweep() -> dict[str, Any]:
    result, following = service.sweep(get_accounting_settings().stuck_after_s, queue_backlog)
    publish(app, following)
    return {
        "failed": result.failed,
        "resettled": result.resettled,
        "reannounced": result.reannounced,
        "waiting": result.waiting,
    }
