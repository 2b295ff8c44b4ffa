"""``tandem worker-health SERVICE``: the health check of a Celery worker service, through Redis.

Two checks, for two questions:

- the default sends the service's health task (``shared.tasks.HEALTH_TASKS``) to its queue and
  waits for the answer: *does some worker consume this queue, end to end?* An operator's check,
  and the one to run after a deploy.
- ``--local`` pings only the worker running on this host (node ``SERVICE@hostname``, the name
  ``tandem worker`` gives it) over Celery's control channel. The worker's main process answers
  even while every pool process runs a long LLM task, and a queue backlog does not delay the
  answer, so this is the container liveness probe: a busy worker is not a dead one.

Exit status 0 when healthy, 1 when not; ``--json`` prints the outcome as one JSON object.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import typer
from celery import Celery

from shared.celery_base import producer_app
from shared.tasks import HEALTH_TASKS, Queue
from tandem.commands.workers import Service


def node_name(service: Service, hostname: str | None = None) -> str:
    """The Celery node name ``tandem worker SERVICE`` runs under on this host."""
    return f"{service.value}@{hostname or socket.gethostname()}"


def check_queue(app: Celery, service: Service, timeout_s: float) -> dict[str, Any]:
    """Send the health task to the service's queue and wait for a worker's answer."""
    task = HEALTH_TASKS[Queue(service.value)]
    # Not shared.celery_base.send: a probe's message must expire with the probe, or an outage
    # would leave a pile of stale health messages in front of the real work.
    result = app.send_task(
        task.value, kwargs={}, queue=task.queue.value, expires=max(timeout_s, 1.0)
    )
    try:
        answer = result.get(timeout=timeout_s)
    finally:
        result.forget()
    healthy = isinstance(answer, dict) and answer.get("status") == "ok"
    return {"answer": answer, "healthy": healthy}


def check_local(app: Celery, service: Service, timeout_s: float) -> dict[str, Any]:
    """Ping this host's worker of ``service`` over the control channel."""
    node = node_name(service)
    replies = app.control.ping(destination=[node], timeout=timeout_s) or []
    answered = {name: reply for item in replies for name, reply in item.items()}
    reply = answered.get(node)
    healthy = isinstance(reply, dict) and reply.get("ok") == "pong"
    return {"node": node, "answer": reply, "healthy": healthy}


def check_consuming(app: Celery, service: Service, timeout_s: float) -> dict[str, Any]:
    """Ask this host's worker of ``service`` over the control channel which queues it
    consumes: healthy when its own queue is among them (what ``/readyz`` checks, for one
    node), however long the queue's backlog."""
    node = node_name(service)
    replies = app.control.inspect(destination=[node], timeout=timeout_s).active_queues() or {}
    queues = [queue["name"] for queue in replies.get(node, [])]
    return {"node": node, "answer": queues, "healthy": Queue(service.value).value in queues}


def worker_health(
    service: Service = typer.Argument(..., help="Which service's workers to check."),
    local: bool = typer.Option(
        False, "--local", help="Ping only this host's worker (liveness probe) instead of a task."
    ),
    timeout: float = typer.Option(10.0, min=0.1, help="Seconds to wait for the answer."),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
) -> None:
    """Check a worker service through Redis; exit 1 when it does not answer."""
    app = producer_app()
    started = time.monotonic()
    outcome: dict[str, Any] = {"service": service.value, "check": "local" if local else "queue"}
    try:
        outcome |= (check_local if local else check_queue)(app, service, timeout)
    except Exception as exc:  # any failure to answer is "unhealthy", with the reason shown
        outcome |= {"healthy": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        app.close()
    outcome["elapsed_s"] = round(time.monotonic() - started, 3)
    if as_json:
        typer.echo(json.dumps(outcome, default=str))
    else:
        state = "healthy" if outcome["healthy"] else "UNHEALTHY"
        detail = outcome.get("error") or outcome.get("answer")
        typer.echo(f"{service.value} ({outcome['check']}): {state} {detail}")
    if not outcome["healthy"]:
        raise typer.Exit(code=1)
