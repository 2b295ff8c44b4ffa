"""``tandem stack up|down|status``: the whole system on one machine, without Docker."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from celery import Celery

from shared.celery_base import producer_app
from shared.prompts import LAB_MODEL_PREFIX
from shared.settings import WorkerSettings
from shared.shipped_models import (
    DEFAULT_MODEL_PATH,
    LAB_MODEL_PATH,
    LAB_V2_MODEL_PATH,
    LAB_V3_MODEL_PATH,
    ROOT,
    SIM_MODEL_PATH,
)
from shared.tasks import Queue
from tandem.classifier.model_files import read_card
from tandem.lab.configs import PAIRS, Role
from tandem.stack.binaries import find_binaries
from tandem.stack.health import PartHealth, probe_infra, probe_process
from tandem.stack.infra import (
    InfraConfig,
    start_postgres,
    start_redis,
    stop_postgres,
    stop_redis,
)
from tandem.stack.processes import (
    ProcessSpec,
    StackState,
    alive,
    kill_group,
    start_process,
    stop_process,
    tandem_argv,
)
from tandem.stack.settings import StackSettings

# Engines other than the bundled real pair need the classifier trained on them and the level
# schedule it was calibrated on (a classifier's thresholds are per level). The real pair uses
# the shipped defaults, which are its own classifier and levels.
STACK_CLASSIFIERS: dict[str, Path] = {
    "sim": SIM_MODEL_PATH,
    "lab": LAB_MODEL_PATH,
    "lab-v2": LAB_V2_MODEL_PATH,
    "lab-v3": LAB_V3_MODEL_PATH,
}
# The lab engine sets: which trained pair each serves (its model ids name the pair, so the
# prompt layout and the classifier's collected header agree).
LAB_PAIRS: dict[str, str] = {"lab": "v1", "lab-v2": "v2", "lab-v3": "v3"}


def lab_model_id(engines: str, role: str) -> str:
    pair = LAB_PAIRS[engines]
    return f"{LAB_MODEL_PREFIX}-{role}" if pair == "v1" else f"{LAB_MODEL_PREFIX}-{pair}-{role}"


def classifier_env(engines: str) -> dict[str, str]:
    """Classifier and levels for these engines, unless the user set either."""
    model = STACK_CLASSIFIERS.get(engines)
    card = read_card(model) if model is not None else {}
    if not card or {"TANDEM_CLASSIFIER_DEFAULT_PATH", "TANDEM_LEVELS"} & set(os.environ):
        return {}
    levels = card["trained_on"]["header"]["levels"]
    return {"TANDEM_CLASSIFIER_DEFAULT_PATH": str(model), "TANDEM_LEVELS": json.dumps(levels)}


def savings_baseline_env(engines: str) -> dict[str, str]:
    """The coordinator-alone baseline measured with these engines' classifier (its evaluation's
    ``savings_baseline.json``), so reports and the dashboard show savings; unless the user set
    one."""
    card = read_card(STACK_CLASSIFIERS.get(engines, DEFAULT_MODEL_PATH))
    results = card.get("evaluation", {}).get("results")
    if not results or "TANDEM_SAVINGS_BASELINE_FILE" in os.environ:
        return {}
    baseline = ROOT / str(results) / "savings_baseline.json"
    return {"TANDEM_SAVINGS_BASELINE_FILE": str(baseline)} if baseline.exists() else {}


def lab_engine_env(engines: str) -> dict[str, str]:
    """The lab pair's real parameter counts, from its manifests: FLOPs and cost follow them."""
    from tandem.lab.pipeline import read_manifest  # training code: only when the lab pair runs

    models = PAIRS[LAB_PAIRS[engines]].models_dir
    return {
        f"TANDEM_{role.value.upper()}_ENGINE_MODEL_PARAMETERS": str(
            read_manifest(models / role.value)["parameters"]
        )
        for role in Role
    }


Report = Callable[[str], None]

ONE_PROCESS = ("--concurrency", "1")
# Webhook POSTs wait on the network, not the CPU: threads let the other tenants' webhooks go
# out while one receiver keeps a POST waiting until its timeout.
WORKER_OPTIONS: dict[Queue, tuple[str, ...]] = {
    Queue.WEBHOOKS: ("--pool", "threads", "--concurrency", "4")
}


@dataclass(frozen=True)
class Stack:
    settings: StackSettings

    @property
    def root(self) -> Path:
        return self.settings.dir.resolve()

    @property
    def infra(self) -> InfraConfig:
        return InfraConfig.from_settings(self.settings)

    @property
    def state_path(self) -> Path:
        return self.root / "stack.json"

    def url(self, port: int) -> str:
        return f"http://{self.settings.host}:{port}"

    @property
    def api_url(self) -> str:
        return self.url(self.settings.api_port)

    def engine_models(self) -> dict[str, str]:
        """Model id of each role's local engine: the bundled small models, the lab pair, or the
        simulator."""
        if self.settings.engines == "sim":
            return {"coordinator": "sim-coordinator", "executor": "sim-executor"}
        if self.settings.engines in LAB_PAIRS:
            return {
                role: lab_model_id(self.settings.engines, role)
                for role in ("coordinator", "executor")
            }
        return {"coordinator": "gemma3-270m", "executor": "smollm2-135m"}

    def engine_args(self, role: str) -> list[str]:
        """``tandem engine serve`` arguments for one role (the lab pair: a model directory,
        loaded by the same backend as the bundled models, reporting the lab model id)."""
        model = self.engine_models()[role]
        if self.settings.engines in LAB_PAIRS:
            models = PAIRS[LAB_PAIRS[self.settings.engines]].models_dir
            return ["--backend", "gguf", "--model", str(models / role), "--model-id", model]
        return ["--backend", self.settings.engines, "--model", model]

    def engine_ports(self) -> dict[str, int]:
        return {
            "coordinator": self.settings.coordinator_engine_port,
            "executor": self.settings.executor_engine_port,
        }

    def environment(self) -> dict[str, str]:
        """What every service process is told about where things are."""
        env = {
            "TANDEM_DATABASE_URL": self.infra.database_url(),
            "TANDEM_REDIS_URL": self.infra.redis_url(),
            "TANDEM_LOG_JSON": "true",
        }
        for role, model in self.engine_models().items():
            prefix = f"TANDEM_{role.upper()}_ENGINE_"
            env[prefix + "URL"] = self.url(self.engine_ports()[role])
            env[prefix + "MODEL_ID"] = model
        if self.settings.engines in LAB_PAIRS:
            env.update(lab_engine_env(self.settings.engines))
        env.update(classifier_env(self.settings.engines))
        env.update(savings_baseline_env(self.settings.engines))
        return env

    def engine_specs(self) -> list[ProcessSpec]:
        return [
            ProcessSpec(
                name=f"engine-{role}",
                argv=tandem_argv(
                    "engine",
                    "serve",
                    *self.engine_args(role),
                    "--host",
                    self.settings.host,
                    "--port",
                    str(self.engine_ports()[role]),
                ),
                health=f"http:{self.url(self.engine_ports()[role])}/health",
            )
            for role in self.engine_models()
        ]

    def api_spec(self) -> ProcessSpec:
        return ProcessSpec(
            name="api",
            argv=tandem_argv(
                "api",
                "serve",
                "--host",
                self.settings.host,
                "--port",
                str(self.settings.api_port),
                # Two processes: one Python process cannot use both cores of the smallest host.
                "--workers",
                "2",
            ),
            health=f"http:{self.api_url}/healthz",
        )

    def worker_specs(self) -> list[ProcessSpec]:
        specs = [
            ProcessSpec(
                name=f"worker-{queue.value}",
                argv=tandem_argv("worker", queue.value, *WORKER_OPTIONS.get(queue, ONE_PROCESS)),
                health=f"worker:{queue.value}",
            )
            for queue in Queue
        ]
        specs.append(
            ProcessSpec(
                name="beat",
                argv=tandem_argv("beat", "--schedule", str(self.root / "celerybeat-schedule")),
                health="pid",
            )
        )
        return specs

    def specs(self) -> list[list[ProcessSpec]]:
        """Start order: engines first (workers check their model at start), then the rest."""
        return [self.engine_specs(), [*self.worker_specs(), self.api_spec()]]

    def producer(self) -> Celery:
        return producer_app(WorkerSettings(redis_url=self.infra.redis_url()))

    def urls(self) -> dict[str, str]:
        return {
            "API": self.api_url,
            "API reference (OpenAPI)": f"{self.api_url}/docs",
            "API metrics": f"{self.api_url}/metrics",
            "dashboard": f"{self.api_url}/dashboard",
            **{f"{role} engine": self.url(port) for role, port in self.engine_ports().items()},
        }

    # -- up ---------------------------------------------------------------------------------

    def up(self, report: Report) -> list[PartHealth]:
        state = StackState.load(self.state_path)
        binaries = find_binaries()
        state.started_postgres |= start_postgres(self.infra, binaries)
        state.started_redis |= start_redis(self.infra, binaries)
        state.save(self.state_path)
        report(f"postgres  {self.infra.database_url()}")
        if not self.infra.pg_home.is_relative_to(self.root):
            # The postgres user cannot enter the stack's directory (a clone in root's home).
            report(f"          data in {self.infra.pg_home}")
        report(f"redis     {self.infra.redis_url()}")

        # Migrations are a one-off step, through the same entry point deployments use.
        subprocess.run(
            tandem_argv("db", "upgrade"), check=True, env=self._env(), stdout=subprocess.DEVNULL
        )
        report("migrations applied (tandem db upgrade)")

        # Whatever is not running is (re)started: a first start, or a killed worker, API or
        # beat of a stack that is otherwise up. Each phase waits only for its own parts.
        parts: list[PartHealth] = []
        names: list[str] = []
        for phase in self.specs():
            for spec in phase:
                running = state.processes.get(spec.name)
                if running and alive(running):
                    continue
                if running:  # what is left of its process group (an API's workers) goes too
                    kill_group(int(str(running["pid"])))
                report(f"{'restarting' if running else 'starting'} {spec.name}")
                state.processes[spec.name] = start_process(
                    spec, self.infra.logs, self.environment()
                )
                state.save(self.state_path)
            names += [spec.name for spec in phase]
            parts = self.wait_healthy(report, names)
            if not all(part.healthy for part in parts):
                break
        return parts

    def _env(self) -> dict[str, str]:
        return {**os.environ, **self.environment()}

    def wait_healthy(self, report: Report, names: list[str] | None = None) -> list[PartHealth]:
        """Wait until Postgres, Redis and the processes ``names`` (default: all) are healthy,
        the start timeout passes, or one of them is not running."""
        deadline = time.monotonic() + self.settings.start_timeout_s
        while True:
            parts = self.status(probe_timeout_s=3.0, names=names)
            if all(part.healthy for part in parts) or time.monotonic() > deadline:
                return parts
            dead = [p for p in parts if not p.healthy and "is not running" in p.detail]
            if dead:
                return parts
            time.sleep(1.0)

    # -- status / down ----------------------------------------------------------------------

    def status(
        self, probe_timeout_s: float = 5.0, names: list[str] | None = None
    ) -> list[PartHealth]:
        parts = probe_infra(self.infra)
        state = StackState.load(self.state_path)
        if not state.processes:
            return parts
        app = self.producer()
        try:
            for name, info in state.processes.items():
                if names is None or name in names:
                    parts.append(probe_process(name, info, app, probe_timeout_s))
        finally:
            app.close()
        return parts

    def down(self, report: Report) -> None:
        state = StackState.load(self.state_path)
        for name, info in reversed(list(state.processes.items())):
            if alive(info):  # never a later process that reuses a dead one's pid
                stop_process(int(str(info["pid"])))
            report(f"stopped {name}")
        state.processes.clear()
        binaries = find_binaries(install=False)
        if state.started_redis and stop_redis(self.infra):
            report("stopped redis")
        if state.started_postgres and stop_postgres(self.infra, binaries):
            report("stopped postgres")
        state.started_redis = state.started_postgres = False
        state.save(self.state_path)
