"""Service processes of the local stack, started with the same entry points as deployments."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: list[str]
    health: str  # "worker:<queue>", "http:<url>" or "pid"
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class StackState:
    """What ``up`` started, so ``down`` stops exactly that and nothing else."""

    started_postgres: bool = False
    started_redis: bool = False
    processes: dict[str, dict[str, object]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> StackState:
        if not path.exists():
            return cls()
        return cls(**json.loads(path.read_text()))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2))


def tandem_argv(*args: str) -> list[str]:
    """The ``tandem`` console script run by this interpreter (works inside a venv too)."""
    return [sys.executable, "-m", "tandem", *args]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as dead.
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return finished == 0


def start_process(spec: ProcessSpec, logs: Path, base_env: dict[str, str]) -> dict[str, object]:
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{spec.name}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            spec.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **base_env, **spec.env},
            start_new_session=True,  # its own process group: down stops children too
        )
    return {"pid": process.pid, "argv": spec.argv, "log": str(log_path), "health": spec.health}


def stop_process(pid: int, timeout_s: float = 15.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after the timeout."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
