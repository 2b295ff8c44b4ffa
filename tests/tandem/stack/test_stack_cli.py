"""``tandem stack up|status|down`` as a user runs it, with simulator engines on free ports."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tandem.stack.binaries import find_binaries
from tandem.stack.infra import InfraConfig, redis_ready, start_redis, stop_redis
from tandem.stack.processes import StackState, pid_alive
from tests.tandem.stack.test_infra import free_port

ROOT = Path(__file__).resolve().parents[3]


def tandem(
    args: list[str], env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tandem", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.e2e
def test_up_status_down_stops_only_what_it_started() -> None:
    stack_dir = ROOT / ".tandem" / "test-stack"
    shutil.rmtree(stack_dir, ignore_errors=True)
    ports = {name: free_port() for name in ("pg", "redis", "api", "coord", "exec")}
    env = {
        **os.environ,
        "TANDEM_STACK_DIR": str(stack_dir),
        "TANDEM_STACK_PG_PORT": str(ports["pg"]),
        "TANDEM_STACK_REDIS_PORT": str(ports["redis"]),
        "TANDEM_STACK_API_PORT": str(ports["api"]),
        "TANDEM_STACK_COORDINATOR_ENGINE_PORT": str(ports["coord"]),
        "TANDEM_STACK_EXECUTOR_ENGINE_PORT": str(ports["exec"]),
        "TANDEM_STACK_ENGINES": "sim",
        "TANDEM_STACK_START_TIMEOUT_S": "120",
    }
    # A Redis that was running before `up`: the stack must use it and leave it running.
    infra = InfraConfig(root=stack_dir, pg_port=ports["pg"], redis_port=ports["redis"])
    start_redis(infra, find_binaries())
    try:
        up = tandem(["stack", "up", "--json"], env)
        assert up.returncode == 0, up.stdout + up.stderr
        report = json.loads(up.stdout)
        assert report["healthy"] is True
        names = {part["name"] for part in report["parts"]}
        assert names >= {
            "postgres",
            "redis",
            "engine-coordinator",
            "engine-executor",
            "api",
            "beat",
            "worker-coordinator",
            "worker-scorer",
            "worker-executor",
            "worker-accounting",
            "worker-webhooks",
        }

        status = tandem(["stack", "status", "--json"], env)
        assert status.returncode == 0, status.stdout + status.stderr
        assert all(part["healthy"] for part in json.loads(status.stdout)["parts"])

        # Killed processes are brought back by `up` (not refused because something is down).
        before = StackState.load(stack_dir / "stack.json").processes
        killed = ["worker-accounting", "api", "beat"]
        for name in killed:
            os.kill(int(str(before[name]["pid"])), signal.SIGKILL)
        again = tandem(["stack", "up", "--json"], env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert json.loads(again.stdout)["healthy"] is True
        after_restart = StackState.load(stack_dir / "stack.json").processes
        for name in before:
            moved = after_restart[name]["pid"] != before[name]["pid"]
            assert moved == (name in killed), name

        state = StackState.load(stack_dir / "stack.json")
        pids = [int(str(info["pid"])) for info in state.processes.values()]
        assert state.started_postgres and not state.started_redis

        down = tandem(["stack", "down"], env)
        assert down.returncode == 0, down.stdout + down.stderr
        assert not any(pid_alive(pid) for pid in pids)
        assert redis_ready(infra), "down stopped a Redis it did not start"

        after = tandem(["stack", "status", "--json"], env)
        assert after.returncode == 1
        parts = {p["name"]: p["healthy"] for p in json.loads(after.stdout)["parts"]}
        assert parts == {"postgres": False, "redis": True}
    finally:
        tandem(["stack", "down"], env)
        stop_redis(infra)
