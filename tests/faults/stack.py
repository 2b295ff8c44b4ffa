"""A whole stack of real processes on a Postgres and a Redis of its own, for the fault tests.

The fault tests stop Postgres and Redis and kill workers, so they never touch the servers other
test sessions share: :func:`start_stack` brings up its own Postgres and Redis (with
:mod:`tandem.stack.infra`, on free ports, under a temporary directory), migrates a database,
and starts the simulator engines, every worker service, beat and the API with the deployed entry
points, all with short reliability settings so that recovery takes seconds, not minutes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Connection

from shared.celery_base import producer_app
from shared.db.session import get_engine
from shared.settings import DEV_ADMIN_KEY, WorkerSettings
from shared.tasks import HEALTH_TASKS, Queue
from tandem.stack.binaries import Binaries, find_binaries
from tandem.stack.infra import (
    PG_OUTSIDE,
    InfraConfig,
    ensure_database,
    start_postgres,
    start_redis,
    stop_postgres,
    stop_redis,
)
from tandem.stack.processes import kill_group, tandem_argv
from tests.conftest import WorkerPool, start_workers
from tests.services.pipeline.support import free_port

SERVICES = ("coordinator", "scorer", "executor", "accounting", "webhooks")
DATABASE = "tandem_faults"

# Short and coherent (the settings refuse anything else): soft < hard < visibility timeout;
# expiry above visibility + retries x backoff cap; the sweeper's horizon above the expiry.
RELIABILITY = {
    "TANDEM_VISIBILITY_TIMEOUT_S": "8",
    "TANDEM_TASK_SOFT_TIME_LIMIT_S": "5",
    "TANDEM_TASK_TIME_LIMIT_S": "7",
    "TANDEM_TASK_MAX_RETRIES": "3",
    "TANDEM_TASK_RETRY_BACKOFF_MAX_S": "1",
    "TANDEM_TASK_EXPIRES_S": "12",
    "TANDEM_STUCK_AFTER_S": "13",
    "TANDEM_SWEEP_INTERVAL_S": "1",
    "TANDEM_WEBHOOK_TIMEOUT_S": "1",
    "TANDEM_WEBHOOK_BACKOFF_S": "0.2",
    "TANDEM_WEBHOOK_RELAY_INTERVAL_S": "1",
    "TANDEM_WEBHOOK_RELAY_GRACE_S": "1",
    # The tests' webhook receiver listens on loopback, which the egress policy refuses unless
    # the operator allowlists it.
    "TANDEM_EGRESS_ALLOW_HOSTS": '["127.0.0.1"]',
    **{
        f"TANDEM_{role}_ENGINE_{name}": value
        for role in ("COORDINATOR", "EXECUTOR")
        for name, value in (("BACKOFF_S", "0.1"), ("BACKOFF_MAX_S", "0.5"))
    },
}
STUCK_AFTER_S = float(RELIABILITY["TANDEM_STUCK_AFTER_S"])
# Every engine call takes a while (time to first token, then per token), so a test sees each
# step in flight; steps stay far below the soft time limit.
SIM_TIMING = {"TANDEM_ENGINE_SIM_TTFT_S": "0.6", "TANDEM_ENGINE_SIM_TOKENS_PER_S": "100"}
# Level 0 is never sufficient and level 1 always: every job goes through every service
# (score:0, insights:1, score:1, answer, settle).
THRESHOLDS = [1.01, 0.0]
STEPS = ["score:0", "insights:1", "score:1", "answer"]


def wait_until(what: str, check: Callable[[], Any], timeout_s: float, every_s: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy (returned); fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(every_s)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and everything in its group (a prefork worker's pool children)."""
    kill_group(process.pid)
    process.wait()


def _stop(*processes: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    """SIGTERM every process group at once, then SIGKILL what is left after ``timeout_s``."""
    for process in processes:
        if process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _kill_group(process)


@dataclass
class Engine:
    """One ``tandem engine serve`` simulator on a fixed port, restartable with other faults."""

    model: str
    logs: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    faults: str = ""  # what it was started with

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, faults: str = "") -> None:
        """Start it; ``faults`` (the simulator's syntax) apply to every request it serves."""
        argv = tandem_argv("engine", "serve", "--backend", "sim", "--model", self.model)
        argv += ["--model-id", self.model, "--host", "127.0.0.1", "--port", str(self.port)]
        env = {**os.environ, **SIM_TIMING, "TANDEM_ENGINE_SIM_FAULTS": faults}
        self.faults = faults
        with (self.logs / f"engine-{self.model}.log").open("ab") as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        wait_until(f"{self.model} engine healthy", self._healthy, 60, every_s=0.2)

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.model} engine exited with {self.process.returncode}")
        try:
            return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
            self.process = None

    def restart(self, faults: str = "") -> None:
        self.stop()
        self.start(faults)

    def failures(self, error_type: str) -> float:
        """Requests it failed with ``error_type`` (its ``tgi_request_failure`` counter)."""
        metrics = httpx.get(f"{self.url}/metrics", timeout=5).text
        prefix = f'tgi_request_failure{{err="{error_type}"}} '
        return sum(
            float(line[len(prefix) :]) for line in metrics.splitlines() if line.startswith(prefix)
        )


@dataclass
class Tenant:
    id: uuid.UUID
    key: str
    webhook_secret: str
    client: httpx.Client

    def submit(self, question: str, **fields: Any) -> uuid.UUID:
        response = self.client.post(
            "/v1/jobs", json={"question": question, "domain": "math", **fields}
        )
        assert response.status_code == 202, response.text
        return uuid.UUID(response.json()["id"])


@dataclass
class FaultStack:
    infra: InfraConfig
    binaries: Binaries
    logs: Path
    env: dict[str, str]
    engines: dict[str, Engine]
    workers: dict[str, WorkerPool] = field(default_factory=dict)
    others: list[subprocess.Popen[bytes]] = field(default_factory=list)  # beat, API
    beat: subprocess.Popen[bytes] | None = None
    api_url: str = ""
    api: subprocess.Popen[bytes] | None = None
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def database_url(self) -> str:
        return self.infra.database_url(DATABASE)

    @property
    def redis_url(self) -> str:
        return self.infra.redis_url(0)

    # Processes.

    def start_worker(self, service: str) -> None:
        # A restarted worker logs beside its predecessor, whose log tells what it was doing.
        starts = sum(1 for _ in self.logs.glob(f"**/worker-{service}.log"))
        logs = self.logs / f"restart-{starts}" if starts else self.logs
        self.workers[service] = start_workers([service], logs, self.env)

    def kill_worker(self, service: str) -> None:
        """kill -9 the worker's whole process group, as a crashed machine would."""
        _kill_group(self.workers.pop(service).processes[service])

    def wait_for_workers(
        self, services: tuple[str, ...] | list[str], timeout_s: float = 90
    ) -> None:
        """Until each service's worker has answered a health probe from its own queue."""
        app = producer_app(WorkerSettings(redis_url=self.redis_url, database_url=self.database_url))
        try:
            for service in services:
                queue = Queue(service)

                def answered(queue: Queue = queue) -> bool:
                    probe = app.send_task(HEALTH_TASKS[queue].value, queue=queue.value, expires=10)
                    try:
                        probe.get(timeout=5)
                        return True
                    except Exception:
                        return False

                wait_until(f"{service} worker answering", answered, timeout_s, every_s=0)
        finally:
            app.close()

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                start_new_session=True,
            )
        self.others.append(process)
        return process

    def start_beat(self) -> None:
        schedule = self.logs.parent / "beat-schedule"
        self.beat = self._spawn("beat", tandem_argv("beat", "--schedule", str(schedule)))

    def stop_beat(self) -> None:
        """Stop beat, and with it every sweep, until :meth:`start_beat`."""
        assert self.beat is not None
        _stop(self.beat)
        self.others.remove(self.beat)
        self.beat = None

    def start_api(self) -> None:
        port = free_port()
        api = self._spawn(
            "api", tandem_argv("api", "serve", "--host", "127.0.0.1", "--port", str(port))
        )
        self.api_url = f"http://127.0.0.1:{port}"
        self.api = api

        def healthy() -> bool:
            if api.poll() is not None:
                raise RuntimeError(f"the API exited with {api.returncode}")
            try:
                return httpx.get(f"{self.api_url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until("API healthy", healthy, 60, every_s=0.2)

    def kill_api(self) -> None:
        """kill -9 every API process (the server and its workers), as a crashed machine
        would; :meth:`start_api` starts another on a new port."""
        assert self.api is not None
        _kill_group(self.api)
        self.others.remove(self.api)
        self.api = None

    # Dependencies.

    def stop_postgres(self) -> None:
        stop_postgres(self.infra, self.binaries)

    def start_postgres(self) -> None:
        start_postgres(self.infra, self.binaries)

    def stop_redis(self) -> None:
        stop_redis(self.infra)

    def start_redis(self) -> None:
        start_redis(self.infra, self.binaries)

    # Tenants and the database.

    def tenant(self, cap: str = "100") -> Tenant:
        with httpx.Client(
            base_url=self.api_url, headers={"X-Admin-Key": DEV_ADMIN_KEY}, timeout=30
        ) as admin:
            created = admin.post(
                "/v1/admin/tenants",
                json={"name": f"faults-{uuid.uuid4().hex[:10]}", "budget_cap": cap},
            )
            assert created.status_code == 201, created.text
            tenant = created.json()
            issued = admin.post(f"/v1/admin/tenants/{tenant['id']}/keys", json={"name": "faults"})
            assert issued.status_code == 201, issued.text
        key = issued.json()["key"]
        client = httpx.Client(
            base_url=self.api_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
        self.clients.append(client)
        return Tenant(uuid.UUID(tenant["id"]), key, tenant["webhook_secret"], client)

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A connection to the stack's database, in autocommit (each statement sees the latest)."""
        with get_engine(self.database_url).connect() as connection:
            yield connection.execution_options(isolation_level="AUTOCOMMIT")

    def close(self) -> None:
        for client in self.clients:
            client.close()
        workers = [p for pool in self.workers.values() for p in pool.processes.values()]
        engines = [e.process for e in self.engines.values() if e.process is not None]
        _stop(*workers, *self.others, *engines, timeout_s=3)  # a throwaway stack
        get_engine(self.database_url).dispose()
        stop_redis(self.infra)
        stop_postgres(self.infra, self.binaries)
        # As root in a private temporary directory, Postgres kept its files outside it.
        if self.infra.pg_home.parent == PG_OUTSIDE:
            shutil.rmtree(self.infra.pg_home, ignore_errors=True)


def _migrate(database_url: str) -> None:
    from alembic import command

    from tandem.commands.db import alembic_config

    command.upgrade(alembic_config(database_url), "head")


def _activate_classifier(database_url: str) -> None:
    from shared.classifier import SIM_MODEL_PATH, register_version
    from shared.db.session import unit_of_work

    with unit_of_work(database_url) as session:
        register_version(session, SIM_MODEL_PATH, version="faults", thresholds=THRESHOLDS)


@contextmanager
def running_stack(root: Path) -> Iterator[FaultStack]:
    infra = InfraConfig(root=root, pg_port=free_port(), redis_port=free_port())
    binaries = find_binaries()
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    engines = {
        "coordinator": Engine("sim-coordinator", logs),
        "executor": Engine("sim-executor", logs),
    }
    env = {
        **RELIABILITY,
        "TANDEM_DATABASE_URL": infra.database_url(DATABASE),
        "TANDEM_REDIS_URL": infra.redis_url(0),
    }
    for role, engine in engines.items():
        env[f"TANDEM_{role.upper()}_ENGINE_URL"] = engine.url
        env[f"TANDEM_{role.upper()}_ENGINE_MODEL_ID"] = engine.model
    stack = FaultStack(infra, binaries, logs, env, engines)
    try:
        start_redis(infra, binaries)
        start_postgres(infra, binaries)
        ensure_database(infra, DATABASE)
        _migrate(stack.database_url)
        _activate_classifier(stack.database_url)
        for engine in engines.values():
            engine.start()
        for service in SERVICES:
            stack.start_worker(service)
        stack.start_beat()
        stack.start_api()
        stack.wait_for_workers(SERVICES)
        yield stack
    finally:
        stack.close()
