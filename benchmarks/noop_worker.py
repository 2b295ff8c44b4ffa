"""A Celery app with one task that does nothing, built like every service's
(:func:`shared.celery_base.make_celery`): ``step_bench.py`` runs it as a worker to measure
what delivering one message costs a worker before any step code runs."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.celery_base import make_celery
from shared.tasks import Queue, TaskName

app = make_celery("noop", queue=Queue.SCORER)


@app.task(name=TaskName.SCORER_SCORE.value, shared=False)
def noop(job_id: str, level: int = 0) -> None:
    """Takes a scoring message's arguments and does nothing."""
