"""The stack's own Postgres and Redis: started on loopback, probed, and stopped by pid."""

from __future__ import annotations

import socket
from pathlib import Path

from tandem.stack.binaries import find_binaries
from tandem.stack.infra import (
    InfraConfig,
    postgres_ready,
    redis_ready,
    start_postgres,
    start_redis,
    stop_postgres,
    stop_redis,
)


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
