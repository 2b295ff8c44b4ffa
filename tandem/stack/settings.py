"""Settings of the local stack (``tandem stack``), env prefix ``TANDEM_STACK_``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class StackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TANDEM_STACK_", extra="ignore")

    dir: Path = Field(Path(".tandem"), description="Where the local stack keeps data, logs, pids.")
    host: str = Field("127.0.0.1", description="Loopback address every local server binds to.")
    pg_port: int = Field(55432, description="Local Postgres port.")
    redis_port: int = Field(56379, description="Local Redis port.")
    api_port: int = Field(8000, description="Local API port.")
    coordinator_engine_port: int = Field(8081, description="Local coordinator engine port.")
    executor_engine_port: int = Field(8082, description="Local executor engine port.")
    engines: Literal["gguf", "sim", "lab", "lab-v2", "lab-v3"] = Field(
        "lab-v3",
        description="Local engines: the lab pairs trained by `tandem lab` (lab-v3: pair v3, "
        "where the stop decision shows and its classifier carries across domains; lab-v2: pair "
        "v2; lab: pair v1), the bundled real small models (gguf), or the simulator (sim).",
    )
    start_timeout_s: float = Field(300.0, description="How long `up` waits for health.")
