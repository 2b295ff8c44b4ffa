"""Tasks of the accounting service. Thin: each calls a plain function that tests can call directly."""

from __future__ import annotations

from shared.celery_base import health_payload
from shared.tasks import TaskName
from services.accounting.app import app


@app.task(name=TaskName.ACCOUNTING_HEALTH.value, shared=False)
def health() -> dict[str, str]:
    return health_payload("accounting")
