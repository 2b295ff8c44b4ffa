"""The stack's own Postgres and Redis: started on loopback, probed, and stopped by pid."""

from __future__ import annotations

import os
import shutil
import socket
import stat
from pathlib import Path

from tandem.stack.binaries import find_binaries
from tandem.stack.infra import (
    PG_OUTSIDE,
    InfraConfig,
    postgres_ready,
    reachable_by_postgres,
    redis_ready,
    start_postgres,
    start_redis,
    stop_postgres,
    stop_redis,
)
from tandem.stack.processes import ProcessSpec, start_process


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_start_probe_stop(tmp_path_factory) -> None:
    # A directory the postgres user can reach (pytest's tmp dirs are private to root).
    root = Path(__file__).resolve().parents[3] / ".tandem" / "test-infra"
    config = InfraConfig(root=root, pg_port=free_port(), redis_port=free_port())
    binaries = find_binaries()
    try:
        assert start_redis(config, binaries) is True
        assert start_postgres(config, binaries) is True
        assert redis_ready(config) and postgres_ready(config)
        # A second start finds them running and starts nothing.
        assert start_redis(config, binaries) is False
        assert start_postgres(config, binaries) is False
    finally:
        stop_redis(config)
        stop_postgres(config, binaries)
    assert not redis_ready(config)
    assert not postgres_ready(config)


def test_postgres_starts_from_a_folder_the_postgres_user_cannot_enter(tmp_path: Path) -> None:
    # Like a clone in root's home: pytest's tmp dirs sit in a directory of mode 0700.
    private = tmp_path / "home"
    private.mkdir(mode=0o700)
    config = InfraConfig(root=private / "clone" / ".tandem", pg_port=free_port())
    binaries = find_binaries()
    if os.geteuid() == 0:
        assert not reachable_by_postgres(config.root)
        assert not config.pg_data.is_relative_to(private)
    try:
        assert start_postgres(config, binaries) is True
        assert postgres_ready(config)
    finally:
        stop_postgres(config, binaries)
        if config.pg_home.parent == PG_OUTSIDE:
            shutil.rmtree(config.pg_home, ignore_errors=True)
    assert not postgres_ready(config)


def test_a_reachable_stack_keeps_postgres_inside() -> None:
    root = Path(__file__).resolve().parents[3] / ".tandem"
    assert reachable_by_postgres(root)
    assert InfraConfig(root=root).pg_data == root / "postgres" / "data"


def test_log_files_are_private(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir(mode=0o755)
    stale = logs / "api.log"
    stale.write_text("an older line\n")
    stale.chmod(0o644)
    start_process(ProcessSpec("api", ["/bin/true"], "pid"), logs, {})
    assert stat.S_IMODE(logs.stat().st_mode) == 0o700
    assert stat.S_IMODE(stale.stat().st_mode) == 0o600
    config = InfraConfig(root=tmp_path / "stack", redis_port=free_port())
    try:
        start_redis(config, find_binaries())
    finally:
        stop_redis(config)
    assert stat.S_IMODE((config.redis_dir / "redis.log").stat().st_mode) == 0o600
    assert stat.S_IMODE(config.redis_dir.stat().st_mode) == 0o700
