"""Celery app of the scorer service: registers only its own tasks."""

from __future__ import annotations

from shared.celery_base import make_celery
from shared.db.models import Role
from shared.jobs.runner import check_engines_when_ready
from shared.tasks import Queue

app = make_celery("tandem-scorer", queue=Queue.SCORER, include=["services.scorer.tasks"])

# The engine must serve the model configured for it before this worker takes a task.
check_engines_when_ready(app, (Role.SCORER,))
