"""Publishing an admitted job's first task, strictly after its row is committed.

Which task starts a job is the pipeline's decision (:func:`shared.jobs.start_job`); the API
only holds the producer app and calls it after the admission's unit of work has committed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from celery import Celery

from shared.celery_base import producer_app
from shared.db.models import Job
from shared.jobs import start_job


class Publisher(Protocol):
    def __call__(self, job: Job) -> None: ...


def celery_publisher(app_factory: Callable[[], Celery] = producer_app) -> Publisher:
    app: Celery | None = None

    def publish(job: Job) -> None:
        nonlocal app
        if app is None:
            app = app_factory()
        start_job(app, job)

    return publish
