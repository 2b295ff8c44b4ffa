"""Tasks of the webhooks service. Thin: each calls a plain function that tests can call
directly."""

from __future__ import annotations

from typing import Any

from services.webhooks.app import app
from shared.celery_base import health_payload, send
from shared.jobs.flow import publish
from shared.tasks import TaskName
from shared.webhooks import deliver as deliver_once
from shared.webhooks import relay as relay_lost


@app.task(name=TaskName.WEBHOOKS_HEALTH.value, shared=False)
def health() -> dict[str, str]:
    return health_payload("webhooks")


@app.task(name=TaskName.WEBHOOKS_DELIVER.value, shared=False)
def deliver(delivery_id: str) -> dict[str, Any]:
    # A failed attempt comes back as a new message with a countdown: the worker is free again
    # at once (no sleeping retries), and the outbox row still holds the delivery if it is lost.
    retry_in = deliver_once(delivery_id)
    if retry_in is not None:
        send(app, TaskName.WEBHOOKS_DELIVER, {"delivery_id": delivery_id}, countdown=retry_in)
    return {"delivery_id": delivery_id, "retry_in": retry_in}


@app.task(name=TaskName.WEBHOOKS_RELAY.value, shared=False)
def relay() -> dict[str, Any]:
    return {"relayed": publish(app, relay_lost())}
