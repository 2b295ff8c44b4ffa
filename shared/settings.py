"""Typed settings shared by every service.

Every knob is read from the environment with the ``TANDEM_`` prefix (or from a ``.env`` file).
Each service extends :class:`CommonSettings` with its own fields; nothing here carries a
secret default outside development, which :meth:`CommonSettings.check_secrets` enforces.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "TANDEM_"
DEV_ADMIN_KEY = "tandem-dev-admin-key"


class CommonSettings(BaseSettings):
    """Settings every process needs: where Postgres and Redis are, and how to log."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", frozen=True
    )

    environment: Literal["development", "test", "production"] = Field(
        "development", description="Deployment environment; production forbids default secrets."
    )
    database_url: str = Field(
        "postgresql+psycopg://tandem@127.0.0.1:55432/tandem",
        description="SQLAlchemy URL of the Postgres database (psycopg 3 driver).",
    )
    redis_url: str = Field(
        "redis://127.0.0.1:56379/0",
        description="Redis URL: Celery broker and result backend, rate limits, event fan-out.",
    )
    db_pool_size: int = Field(10, description="SQLAlchemy connection pool size per process.")
    db_connect_timeout_s: int = Field(
        10,
        ge=2,
        description="Longest wait, in whole seconds, for a new Postgres connection of a worker "
        "or command (the API's follow TANDEM_DEPENDENCY_TIMEOUT_S): a server that accepts no "
        "connection, or never answers one, fails the step, which is retried, instead of holding "
        "its thread until the operating system gives up.",
    )
    db_ping_idle_s: float = Field(
        30.0,
        ge=0,
        description="A pooled Postgres connection (workers; the API's reports, metrics and "
        "readiness) is pinged before use only when it has been idle this long (0: before every "
        "use); a busy one that died is found by its next statement, which fails (a step is "
        "retried, a request answers 503) while the pool reconnects.",
    )
    log_level: str = Field("INFO", description="Root log level.")
    log_json: bool = Field(True, description="Emit structured JSON log lines.")
    admin_api_key: str = Field(
        DEV_ADMIN_KEY, description="Admin key for tenant and key management (set in production)."
    )
    otlp_endpoint: str | None = Field(
        None,
        description="OTLP/HTTP endpoint traces are exported to (e.g. http://otel-collector:4318); "
        "unset: traces stay in-process, only their ids reach logs and jobs.",
    )
    otlp_sample_ratio: float = Field(
        1.0, ge=0.0, le=1.0, description="Share of new traces (jobs) that are sampled."
    )
    metrics_tenants: list[str] = Field(
        default_factory=list,
        description="Tenants (names) that get their own label value in metrics, as a JSON list; "
        "all others are 'other'. Keep it short: every value is a time series.",
    )

    @model_validator(mode="after")
    def check_secrets(self) -> CommonSettings:
        if self.environment == "production" and self.admin_api_key == DEV_ADMIN_KEY:
            raise ValueError("TANDEM_ADMIN_API_KEY must be set in production")
        return self


class WorkerSettings(CommonSettings):
    """Celery reliability knobs, shared by every worker service.

    How they fit together: docs/architecture.md, 'Reliability settings'.
    """

    visibility_timeout_s: int = Field(
        660, description="Redis broker visibility timeout; unacked tasks are redelivered after it."
    )
    task_soft_time_limit_s: int = Field(
        540,
        description="Soft time limit of one task (raises inside the task); in a threads or "
        "solo pool it bounds the step's engine call.",
    )
    task_time_limit_s: int = Field(
        600, description="Hard time limit of one task (kills it; prefork pool only)."
    )
    task_max_retries: int = Field(5, description="Retries of a task on transient engine errors.")
    task_retry_backoff_max_s: int = Field(60, description="Cap of the exponential retry backoff.")
    task_expires_s: int = Field(
        1200,
        description="Messages not started within this many seconds are dropped; one its job "
        "still waits for is sent again to the back of its queue (keep it above the visibility "
        "timeout plus every retry's backoff).",
    )
    worker_pool: Literal["threads", "prefork", "solo"] = Field(
        "threads",
        description="Celery pool of `tandem worker`: threads (tasks wait on engines and "
        "Postgres, so threads of one process serve them without a process hop per message), "
        "prefork or solo.",
    )
    worker_concurrency: int = Field(
        2, description="Tasks one service worker runs at once (its threads or processes)."
    )
    metrics_port: int = Field(0, description="Port of the worker's Prometheus endpoint (0: off).")

    @model_validator(mode="after")
    def check_time_limits(self) -> WorkerSettings:
        # A task that outlives the visibility timeout is redelivered while still running:
        # the hard limit must end it first.
        if not self.task_soft_time_limit_s < self.task_time_limit_s < self.visibility_timeout_s:
            raise ValueError(
                "need task_soft_time_limit_s < task_time_limit_s < visibility_timeout_s"
            )
        # A redelivered or retried message must not expire before it can run again.
        retries = self.task_max_retries * self.task_retry_backoff_max_s
        if self.task_expires_s <= self.visibility_timeout_s + retries:
            raise ValueError(
                "need task_expires_s > visibility_timeout_s + task_max_retries * "
                "task_retry_backoff_max_s"
            )
        return self


@lru_cache
def get_common_settings() -> CommonSettings:
    return CommonSettings()


@lru_cache
def get_worker_settings() -> WorkerSettings:
    return WorkerSettings()
