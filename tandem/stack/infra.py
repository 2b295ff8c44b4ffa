"""Starting, probing and stopping the local Postgres and Redis servers."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import pwd
import shutil
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis

from tandem.stack.binaries import Binaries
from tandem.stack.settings import StackSettings

PG_USER = "tandem"
PG_DATABASE = "tandem"
# Where Postgres' files go when the postgres user cannot reach the stack's directory (a clone
# in root's home, mode 0700): one directory per stack directory.
PG_OUTSIDE = Path("/var/lib/tandem")


@dataclass(frozen=True)
class InfraConfig:
    root: Path  # everything lives under here
    pg_port: int = 55432
    redis_port: int = 56379
    host: str = "127.0.0.1"

    @classmethod
    def from_settings(cls, settings: StackSettings, *, base: Path | None = None) -> InfraConfig:
        """The servers a stack with ``settings`` runs.

        A relative ``settings.dir`` is taken from ``base``: the working directory by default, as
        ``tandem stack`` does; tests and benchmarks pass the repository root so that they find
        the stack's servers from wherever they are started.
        """
        return cls(
            root=((base or Path.cwd()) / settings.dir).resolve(),
            pg_port=settings.pg_port,
            redis_port=settings.redis_port,
            host=settings.host,
        )

    @functools.cached_property
    def pg_home(self) -> Path:
        """Postgres' data, socket and log directory: ``postgres/`` in the stack's directory,
        unless the ``postgres`` user (initdb and pg_ctl run as that user under root) cannot
        reach it there."""
        inside = self.root / "postgres"
        if os.geteuid() != 0 or reachable_by_postgres(self.root):
            return inside
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:16]
        return PG_OUTSIDE / f"postgres-{digest}"

    @property
    def pg_data(self) -> Path:
        return self.pg_home / "data"

    @property
    def pg_run(self) -> Path:
        return self.pg_home / "run"

    @property
    def redis_dir(self) -> Path:
        return self.root / "redis"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def database_url(self, database: str = PG_DATABASE) -> str:
        return f"postgresql+psycopg://{PG_USER}@{self.host}:{self.pg_port}/{database}"

    def redis_url(self, db: int = 0) -> str:
        return f"redis://{self.host}:{self.redis_port}/{db}"


def _as_postgres_user() -> list[str]:
    """initdb and pg_ctl refuse to run as root: run them as the ``postgres`` system user."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


def reachable_by_postgres(path: Path) -> bool:
    """Whether the ``postgres`` user may traverse every directory down to ``path`` (made here
    first, so that the answer covers it too)."""
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        return True  # no such user: Postgres runs as whoever starts it
    path.mkdir(parents=True, exist_ok=True)
    groups = set(os.getgrouplist("postgres", entry.pw_gid))
    for directory in [path, *path.parents]:
        info = directory.stat()
        if info.st_uid == entry.pw_uid:
            allowed = info.st_mode & stat.S_IXUSR
        elif info.st_gid in groups:
            allowed = info.st_mode & stat.S_IXGRP
        else:
            allowed = info.st_mode & stat.S_IXOTH
        if not allowed:
            return False
    return True


def private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def _chown_to_postgres(path: Path) -> None:
    if os.geteuid() != 0:
        return
    entry = pwd.getpwnam("postgres")
    for current in [path, *path.rglob("*")]:
        os.chown(current, entry.pw_uid, entry.pw_gid)


def postgres_ready(config: InfraConfig) -> bool:
    try:
        with psycopg.connect(
            host=config.host,
            port=config.pg_port,
            user=PG_USER,
            dbname="postgres",
            connect_timeout=2,
        ) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def redis_ready(config: InfraConfig) -> bool:
    try:
        return bool(redis.Redis(host=config.host, port=config.redis_port, socket_timeout=2).ping())
    except redis.RedisError:
        return False


def start_postgres(config: InfraConfig, binaries: Binaries) -> bool:
    """Start Postgres unless it already answers; returns True when this call started it."""
    if postgres_ready(config):
        return False
    if config.pg_home.parent == PG_OUTSIDE:
        PG_OUTSIDE.mkdir(mode=0o755, parents=True, exist_ok=True)
    config.pg_run.mkdir(parents=True, exist_ok=True)
    private_dir(config.logs)
    if not (config.pg_data / "PG_VERSION").exists():
        config.pg_data.mkdir(parents=True, exist_ok=True)
        _chown_to_postgres(config.pg_data.parent)
        subprocess.run(
            [
                *_as_postgres_user(),
                str(binaries.initdb),
                "-D",
                str(config.pg_data),
                "-U",
                PG_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    _chown_to_postgres(config.pg_data.parent)
    log = config.pg_data.parent / "postgres.log"
    options = (
        f"-p {config.pg_port} -k {config.pg_run} -c listen_addresses={config.host} "
        "-c max_connections=300 -c fsync=off -c synchronous_commit=off "
        # Statement counts per job (benchmarks/pipeline_bench.py) come from this extension.
        "-c shared_preload_libraries=pg_stat_statements"
    )
    subprocess.run(
        [
            *_as_postgres_user(),
            str(binaries.pg_ctl),
            "-D",
            str(config.pg_data),
            "-o",
            options,
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "start",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    ensure_database(config, PG_DATABASE)
    return True


def ensure_database(config: InfraConfig, name: str, *, recreate: bool = False) -> None:
    with psycopg.connect(
        host=config.host, port=config.pg_port, user=PG_USER, dbname="postgres", autocommit=True
    ) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and recreate:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(config: InfraConfig, name: str) -> None:
    with psycopg.connect(
        host=config.host, port=config.pg_port, user=PG_USER, dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def stop_postgres(config: InfraConfig, binaries: Binaries) -> bool:
    if not (config.pg_data / "postmaster.pid").exists():
        return False
    subprocess.run(
        [
            *_as_postgres_user(),
            str(binaries.pg_ctl),
            "-D",
            str(config.pg_data),
            "-m",
            "fast",
            "-w",
            "stop",
        ],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return True


def start_redis(config: InfraConfig, binaries: Binaries) -> bool:
    """Start Redis unless it already answers; returns True when this call started it."""
    if redis_ready(config):
        return False
    private_dir(config.redis_dir)
    log = config.redis_dir / "redis.log"
    log.touch(mode=0o600)
    log.chmod(0o600)  # Redis appends to it and keeps its mode
    subprocess.run(
        [
            str(binaries.redis_server),
            "--port",
            str(config.redis_port),
            "--bind",
            config.host,
            "--daemonize",
            "yes",
            "--dir",
            str(config.redis_dir),
            "--pidfile",
            str(config.redis_dir / "redis.pid"),
            "--logfile",
            str(config.redis_dir / "redis.log"),
        ],
        check=True,
    )
    deadline = time.monotonic() + 10
    while not redis_ready(config):
        if time.monotonic() > deadline:
            raise RuntimeError(f"Redis did not start; see {config.redis_dir / 'redis.log'}")
        time.sleep(0.02)
    return True


def stop_redis(config: InfraConfig) -> bool:
    pidfile = config.redis_dir / "redis.pid"
    if not pidfile.exists():
        return False
    # shutdown closes the connection under us; a server already dead is already stopped.
    with contextlib.suppress(redis.RedisError):
        redis.Redis(host=config.host, port=config.redis_port, socket_timeout=2).shutdown(
            nosave=False
        )
    pidfile.unlink(missing_ok=True)
    return True


def remove_data(config: InfraConfig) -> None:
    shutil.rmtree(config.root, ignore_errors=True)
