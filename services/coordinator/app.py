"""Celery app of the coordinator service: registers only its own tasks."""

from __future__ import annotations

from shared.celery_base import make_celery
from shared.tasks import Queue

app = make_celery("tandem-coordinator", queue=Queue.COORDINATOR, include=["services.coordinator.tasks"])
