"""Probing each part of the stack: the answer of ``tandem stack status``."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from celery import Celery

from shared.tasks import Queue
from tandem.commands.health import check_consuming
from tandem.commands.workers import Service
from tandem.stack.infra import InfraConfig, postgres_ready, redis_ready
from tandem.stack.processes import alive


@dataclass(frozen=True)
class PartHealth:
    name: str
    healthy: bool
    detail: str


def probe_worker(app: Celery, queue: Queue, timeout_s: float) -> tuple[bool, str]:
    """Ask this host's worker of ``queue`` over the control channel whether it consumes its
    queue: the question ``/readyz`` asks, answered by the worker's main process even while
    a backlog waits in the queue (a health task would wait behind it)."""
    try:
        outcome = check_consuming(app, Service(queue.value), timeout_s)
    except Exception as exc:  # any failure (timeout, broker down) means unhealthy
        return False, f"no answer from {queue.value} worker: {type(exc).__name__}"
    if not outcome["healthy"]:
        return False, f"{outcome['node']} does not answer or does not consume {queue.value!r}"
    return True, f"{outcome['node']} consumes {queue.value!r}"


def probe_http(url: str, timeout_s: float) -> tuple[bool, str]:
    try:
        response = httpx.get(url, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return False, f"{url}: {type(exc).__name__}"
    return response.status_code == 200, f"{url}: HTTP {response.status_code}"


def probe_process(name: str, info: dict[str, object], app: Celery, timeout_s: float) -> PartHealth:
    pid = int(str(info["pid"]))
    if not alive(info):
        return PartHealth(name, False, f"pid {pid} is not running; see {info['log']}")
    check = str(info["health"])
    if check.startswith("worker:"):
        ok, detail = probe_worker(app, Queue(check.removeprefix("worker:")), timeout_s)
    elif check.startswith("http:"):
        ok, detail = probe_http(check.removeprefix("http:"), timeout_s)
    else:
        ok, detail = True, f"pid {pid} running"
    return PartHealth(name, ok, detail)


def probe_infra(config: InfraConfig) -> list[PartHealth]:
    pg = postgres_ready(config)
    rd = redis_ready(config)
    return [
        PartHealth("postgres", pg, f"{config.host}:{config.pg_port}"),
        PartHealth("redis", rd, f"{config.host}:{config.redis_port}"),
    ]
