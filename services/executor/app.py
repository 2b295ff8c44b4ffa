"""Celery app of the executor service: registers only its own tasks."""

from __future__ import annotations

from shared.celery_base import make_celery
from shared.tasks import Queue

app = make_celery("tandem-executor", queue=Queue.EXECUTOR, include=["services.executor.tasks"])
