"""Running one pipeline step inside a Celery task: bounded retries, then a failed job.

Transient engine errors, and Postgres being unreachable, are re-raised for the task's autoretry
(jittered backoff) until the last allowed attempt; each transient engine failure leaves a
``retry`` event, so the sweeper knows the job is retrying and, should it give up, why. Then,
like any other error, the job is recorded as failed with its reason and accounting is asked to
settle its reservation, except when the database itself is down: nothing can be recorded then,
and the sweeper picks the job up once it is back. Next tasks are published only here, after
the step's transaction has committed; a broker outage at that moment loses no job either, as
the job's row says which step it waits for (:func:`shared.jobs.flow.next_task`).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from celery import Celery, Task, signals
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import InterfaceError, OperationalError

from shared.db.models import Role
from shared.engines import check_engine, make_client
from shared.engines.base import EngineClient
from shared.engines.config import EngineConfig, engine_config
from shared.errors import ConfigurationError, NotFoundError, TandemError, TransientError
from shared.jobs.flow import NextTask, publish
from shared.jobs.messages import BROKER_DOWN
from shared.jobs.service import fail_job, record_expired, record_retry
from shared.logging import log_context
from shared.metrics import ENGINE_DURATION, ENGINE_ERRORS, MESSAGES_EXPIRED
from shared.settings import get_worker_settings

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRYABLE = (TransientError, ConnectionError, TimeoutError)
# Postgres unreachable (restarting, failing over, a dropped connection): the step is tried again
# with backoff like a transient engine error, and no failure can be recorded meanwhile.
DATABASE_DOWN = (OperationalError, InterfaceError)


def run_step(
    task: Task, app: Celery, job_id: str, step: Callable[[], list[NextTask]]
) -> dict[str, Any]:
    try:
        following = step()
    except DATABASE_DOWN as error:
        if task.request.retries < (task.max_retries or 0):
            raise
        # Recording the failure would meet the same dead connection: the job keeps its state,
        # and the sweeper announces its step again once the database is back.
        log.error("step %s of job %s gave up, database unreachable: %s", task.name, job_id, error)
        return {"job_id": job_id, "next": []}
    except SoftTimeLimitExceeded:
        # The step ran out of its time, not into a bug: reported as a timeout.
        limit = task.soft_time_limit or task.app.conf.task_soft_time_limit
        following = fail_job(job_id, "timeout", f"{task.name} ran past its time limit ({limit} s)")
    except RETRYABLE as error:
        if task.request.retries < (task.max_retries or 0):
            note_retry(job_id, task.name, task.request.retries + 1, error)
            raise
        following = fail_job(job_id, "retries_exhausted", f"{type(error).__name__}: {error}")
    except NotFoundError:
        log.warning("job %s no longer exists; dropping %s", job_id, task.name)
        return {"job_id": job_id, "next": []}
    except TandemError as error:
        following = fail_job(job_id, error.code, error.message)
    except Exception as error:  # a bug must not leave the job running with its money held
        log.exception("step %s of job %s crashed", task.name, job_id)
        following = fail_job(job_id, "internal_error", f"{type(error).__name__}: {error}")
    try:
        publish(app, following)
    except BROKER_DOWN as error:
        # Committed, but the broker is unreachable: the job's row says what it waits for, and
        # the sweeper announces it once the broker is back.
        log.error("job %s: next step not published (%s); the sweeper will", job_id, error)
    return {"job_id": job_id, "next": [t.name.value for t in following]}


def note_retry(job_id: str, task: str, attempt: int, error: BaseException) -> None:
    """Mark the job as retrying (the sweeper leaves it alone and, should it give up, keeps the
    cause); best effort: the retry must happen even if this cannot be written."""
    code = error.code if isinstance(error, TandemError) else type(error).__name__
    try:
        record_retry(job_id, task=task, attempt=attempt, code=code, error=str(error)[:2000])
    except (*DATABASE_DOWN, NotFoundError):
        log.warning("job %s: retry %d of %s not recorded", job_id, attempt, task)


def note_expired(app: Celery, task: str, request: Any) -> None:
    """A worker dropped a job's message for its age, unstarted (Celery's ``expires``, checked
    before any task code runs): the job's ``expired`` event and, when that message was the
    step the job waits for, the step sent again at once (:func:`record_expired`). Best effort:
    a job whose expiry could not be recorded or sent again is sent again by the sweeper."""
    kwargs = getattr(request, "kwargs", None) or {}
    job_id = kwargs.get("job_id")
    if job_id is None:
        return  # not a job's step (a health probe)
    expires = str(getattr(request, "expires", None))
    awaited = "unknown"
    # The consumer runs this outside any task's log context: what the job binds ends here.
    with log_context(job_id=job_id, task=task):
        try:
            again = record_expired(job_id, task=task, kwargs=kwargs, expires=expires)
            if again is None:
                awaited = "false"
            else:
                awaited = "true"
                publish(app, [again])
                log.warning(
                    "job %s: %s expired unstarted behind a backlog; sent again", job_id, task
                )
        except (*DATABASE_DOWN, *BROKER_DOWN, NotFoundError, ValueError):
            log.warning("job %s: the expiry of %s not recorded or not sent again", job_id, task)
        finally:
            MESSAGES_EXPIRED.labels(task, awaited).inc()


@dataclass
class _ThreadEngines:
    """One thread's event loop and the engine clients bound to it."""

    loop: asyncio.AbstractEventLoop
    pid: int
    clients: dict[str, EngineClient] = field(default_factory=dict)


class _EngineLoop:
    """An event loop per thread that calls engines (a task's thread), holding that thread's
    engine clients; it runs only while the thread waits for a call.

    Tasks are synchronous; building an async client per call costs more than a short engine
    call itself (connection pool, session), so each thread keeps its clients. The call runs on
    the task's own thread: a loop on a thread of its own cost a wake-up of that thread and one
    of the task's thread back for every call. Loops and clients are made lazily in the process
    that uses them, so prefork children never share their parent's.
    """

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._made: list[_ThreadEngines] = []  # every thread's, for closing at exit

    def _mine(self) -> _ThreadEngines:
        mine: _ThreadEngines | None = getattr(self._local, "engines", None)
        if mine is None or mine.pid != os.getpid():
            mine = self._local.engines = _ThreadEngines(asyncio.new_event_loop(), os.getpid())
            with self._lock:
                self._made.append(mine)
        return mine

    def close(self) -> None:
        """Close this process's clients, their pooled connections with them (at exit: an
        aiohttp session that is collected open is logged as an error)."""
        with self._lock:
            made = [engines for engines in self._made if engines.pid == os.getpid()]
            self._made = []
        for engines in made:
            clients, engines.clients = list(engines.clients.values()), {}

            async def close_all(clients: list[EngineClient] = clients) -> None:
                for client in clients:
                    await client.aclose()

            try:
                if clients:
                    engines.loop.run_until_complete(close_all())
                engines.loop.close()
            except Exception as error:  # exiting anyway (a thread still mid-call): say so
                log.warning("engine clients not closed cleanly: %r", error)

    def run(
        self,
        config: EngineConfig,
        call: Callable[[EngineClient], Awaitable[T]],
        timeout_s: float | None = None,
    ) -> T:
        """``call`` on the role's client; past ``timeout_s`` it is cancelled and the step ends
        as a task past its soft time limit does (the threads and solo pools enforce none)."""
        mine = self._mine()
        key = config.key  # a changed configuration gets a client of its own
        bounds: list[asyncio.Timeout] = []

        async def go() -> T:
            client = mine.clients.get(key)
            if client is None:
                client = mine.clients[key] = make_client(config)
            async with asyncio.timeout(timeout_s) as bound:
                bounds.append(bound)
                return await call(client)

        try:
            return mine.loop.run_until_complete(go())
        except TimeoutError:
            if not (bounds and bounds[0].expired()):
                raise  # the call's own timeout (an engine's), retried as transient
            message = f"engine call still running after {timeout_s} s"
            raise SoftTimeLimitExceeded(message) from None


_engines = _EngineLoop()
atexit.register(_engines.close)  # a no-op in a process that made no engine client


def call_engine(role: Role, call: Callable[[EngineClient], Awaitable[T]]) -> tuple[T, EngineConfig]:
    """One engine call through the process's long-lived client for ``role``'s engine."""
    config = engine_config(role)
    model = config.profile.name
    started = time.perf_counter()
    try:
        result = _engines.run(config, call, get_worker_settings().task_soft_time_limit_s)
    except Exception as error:
        code = error.code if isinstance(error, TandemError) else type(error).__name__
        ENGINE_ERRORS.labels(role.value, model, code).inc()
        raise
    finally:
        ENGINE_DURATION.labels(role.value, model).observe(time.perf_counter() - started)
    return result, config


EX_CONFIG = 78  # sysexits.h: configuration error


def check_engines_at_start(roles: tuple[Role, ...]) -> None:
    """Compare each role's engine with its configured model before the worker takes tasks.

    Costs, FLOPs and features are tied to the configured model, so a mismatch stops the worker
    (exit 78). An engine that is not reachable yet is only logged: it may still be starting,
    and the tasks' own retries cover it.
    """
    for role in roles:
        config = engine_config(role)
        try:
            _engines.run(config, partial(check_engine, check_model=config.check_model))
        except ConfigurationError:
            log.critical(
                "refusing to start: %s does not serve the configured model",
                role.value,
                exc_info=True,
            )
            os._exit(EX_CONFIG)
        except RETRYABLE as error:
            log.warning("%s engine not reachable at start: %s", role.value, error)


def check_engines_when_ready(app: Celery, roles: tuple[Role, ...]) -> None:
    """Run :func:`check_engines_at_start` in ``app``'s worker once it has started."""

    @signals.worker_init.connect(weak=False)
    def _check(sender: Any = None, **_: Any) -> None:
        if sender is not None and getattr(sender, "app", None) is app:
            check_engines_at_start(roles)
