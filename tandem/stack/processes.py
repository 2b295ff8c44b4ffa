"""Service processes of the local stack, started with the same entry points as deployments."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO


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


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of ``/proc/PID/stat`` after the command name (state first), None when gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text.rsplit(")", 1)[1].split()


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot): tells a process from a later one that
    reuses its pid."""
    fields = _proc_stat(pid)
    return int(fields[19]) if fields else None


def pid_alive(pid: int, started: int | None = None) -> bool:
    """Whether ``pid`` runs: not gone, not a zombie (whose parent has not reaped it, as under
    an init that does not reap), and, given ``started``, still the process started then."""
    fields = _proc_stat(pid)
    if fields is None:
        return False
    if fields[0] in ("Z", "X"):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is ours
        return False
    return started is None or int(fields[19]) == started


def alive(info: dict[str, object]) -> bool:
    """Whether the process ``start_process`` recorded in ``info`` still runs."""
    started = info.get("started")
    return pid_alive(int(str(info["pid"])), int(str(started)) if started is not None else None)


def private_logs(logs: Path) -> Path:
    """The logs directory, readable by its owner only: log lines name tenants, jobs and hosts."""
    logs.mkdir(parents=True, exist_ok=True)
    logs.chmod(0o700)
    return logs


def open_private_log(path: Path) -> BinaryIO:
    """``path`` opened for appending, mode 0600 (also when it already existed)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(descriptor, 0o600)
    return os.fdopen(descriptor, "ab")


def start_process(spec: ProcessSpec, logs: Path, base_env: dict[str, str]) -> dict[str, object]:
    log_path = private_logs(logs) / f"{spec.name}.log"
    with open_private_log(log_path) as log:
        process = subprocess.Popen(
            spec.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **base_env, **spec.env},
            start_new_session=True,  # its own process group: down stops children too
        )
    return {
        "pid": process.pid,
        "started": start_time(process.pid),
        "argv": spec.argv,
        "log": str(log_path),
        "health": spec.health,
    }


def kill_group(pid: int) -> None:
    """SIGKILL whatever is left in the process group of a leader that is gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


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


@contextlib.contextmanager
def serving_api(
    env: Mapping[str, str] | None = None,
    *,
    workers: int = 1,
    log: Path | None = None,
    start_timeout_s: float = 60.0,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``tandem api serve`` on a free loopback port as a child process, yielded once its
    ``/healthz`` answers 200 as (base URL, process); stopped (its whole group) on exit.
    Benchmarks and end-to-end tests measure or drive the API as deployments run it."""

    def command(port: int) -> list[str]:
        argv = tandem_argv("api", "serve", "--host", "127.0.0.1", "--port", str(port))
        return [*argv, "--workers", str(workers)]

    with serving_http(command, env, log=log, start_timeout_s=start_timeout_s) as served:
        yield served


@contextlib.contextmanager
def serving_http(
    command: Callable[[int], list[str]],
    env: Mapping[str, str] | None = None,
    *,
    log: Path | None = None,
    start_timeout_s: float = 60.0,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """An HTTP server, ``command(port)`` on a free loopback port, run as :func:`serving_api`
    runs the API: yielded once its ``/healthz`` answers 200, its whole group stopped on exit."""
    import httpx  # the launcher's other paths do not need an HTTP client

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = command(port)
    with contextlib.ExitStack() as cleanup:
        output = cleanup.enter_context(open_private_log(log)) if log else subprocess.DEVNULL
        process = subprocess.Popen(
            argv,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        cleanup.callback(process.wait)  # last: reap it
        cleanup.callback(stop_process, process.pid)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + start_timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited with {process.returncode} (log: {log})")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer /healthz in {start_timeout_s:g} s")
            time.sleep(0.2)
        yield url, process
