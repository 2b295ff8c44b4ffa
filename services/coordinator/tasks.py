"""Tasks of the coordinator service. Thin: each calls a plain function that tests can call directly."""

from __future__ import annotations

from shared.celery_base import health_payload
from shared.tasks import TaskName
from services.coordinator.app import app


@app.task(name=TaskName.COORDINATOR_HEALTH.value, shared=False)
def health() -> dict[str, str]:
    return health_payload("coordinator")
