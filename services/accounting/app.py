"""Celery app of the accounting service: registers only its own tasks, and the sweeper's beat
schedule (``tandem beat`` runs it)."""

from __future__ import annotations

from services.accounting.settings import get_accounting_settings
from shared.celery_base import make_celery
from shared.tasks import Queue, TaskName

app = make_celery(
    "tandem-accounting", queue=Queue.ACCOUNTING, include=["services.accounting.tasks"]
)
app.conf.beat_schedule = {
    "sweep-stuck-jobs": {
        "task": TaskName.ACCOUNTING_SWEEP.value,
        "schedule": get_accounting_settings().sweep_interval_s,
        "options": {
            "queue": Queue.ACCOUNTING.value,
            "expires": get_accounting_settings().sweep_interval_s,
        },
    }
}
