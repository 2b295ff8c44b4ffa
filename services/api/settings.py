"""Settings of the job API."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from pydantic import Field

from shared.settings import WorkerSettings


class ApiSettings(WorkerSettings):
    """The API only produces Celery messages, but it sends them with the worker knobs (expiry)."""

    max_question_chars: int = Field(
        16_000, description="Longest question accepted by POST /v1/jobs (longer: 413)."
    )
    max_request_bytes: int = Field(
        1_048_576, description="Largest request body the API reads (larger: 413)."
    )
    max_metadata_bytes: int = Field(
        8_192, description="Largest JSON-encoded job metadata accepted (nested at most 32 deep)."
    )
    # The shipped default classifier's own schedule: its thresholds are per level (a test keeps
    # the two equal).
    levels: list[int] = Field(
        [0, 32, 96, 192],
        description="Cumulative insight-token budget of each truncation level (level 0 = none).",
    )
    domain_levels: dict[str, list[int]] = Field(
        {},
        description='Per-domain level schedules overriding `levels`, as JSON: {"code": [0, 200]}.',
    )
    classifier_refresh_s: float = Field(
        5.0,
        ge=0,
        description="How long a scorer or API process keeps the active classifier version "
        "(the API: its level schedule) before asking Postgres again: an activation takes effect "
        "within this time (0: on every use).",
    )
    max_insight_tokens: int = Field(
        4096, description="Largest cumulative insight budget a job's own `levels` may ask for."
    )
    max_answer_tokens: int = Field(
        512, description="Default and maximum answer tokens of the executor (or LLM baseline)."
    )
    min_answer_tokens: int = Field(
        32, description="Shortest answer budget a plan may be shrunk to before a 402."
    )
    max_cost_limit: Decimal = Field(
        Decimal(10_000), description="Largest per-request max_cost accepted (larger: 422)."
    )
    concurrency_retry_after_s: int = Field(
        5, description="Retry-After sent when a tenant is at its concurrent-jobs limit."
    )
    chat_wait_s: float = Field(
        300.0, description="How long POST /v1/chat/completions waits for its job."
    )
    poll_interval_s: float = Field(
        0.25, description="How often the chat front door and SSE poll a job's progress."
    )
    answer_poll_interval_s: float = Field(
        0.05,
        description="How often a streamed chat completion reads its answer's live text "
        "(Redis) while the executor generates it.",
    )
    readiness_timeout_s: float = Field(
        1.0, description="Timeout of the Celery inspect call behind /readyz."
    )
    readiness_cache_s: float = Field(
        5.0, description="How long /readyz reuses its last queue-consumer check."
    )
    auth_cache_s: float = Field(
        5.0,
        description="How often each API process re-checks the keys it has cached, all in one "
        "statement (a key revoked or a tenant changed elsewhere takes effect within this "
        "time); 0 looks every key up on every request.",
    )
    price_refresh_s: float = Field(
        5.0,
        gt=0,
        description="How often each API process re-reads the price table (a price added "
        "elsewhere is charged to new jobs within this time).",
    )
    key_touch_interval_s: int = Field(
        60, description="A key's last_used_at is written at most this often."
    )
    default_rate_limit_rpm: int = Field(
        3000, description="Requests per minute of a tenant without a rate_limit_rpm of its own."
    )
    auth_failures_per_minute: int = Field(
        30,
        description="Failed authentications one client address may make per minute before its "
        "requests are refused (429) without looking at the key.",
    )
    dependency_timeout_s: float = Field(
        1.0,
        description="Connect timeout towards Postgres and Redis: a dependency that cannot be "
        "reached answers 503 within about this time (one that refuses connections, at once). "
        "Waits on a dependency that is up (a pooled connection, a reply, a connection opened "
        "by the event loop) take at least 5 s.",
    )
    redis_pool_size: int = Field(
        32,
        description="Redis connections per API process; more concurrent requests wait for one.",
    )
    default_page_size: int = Field(20, description="Jobs per page of GET /v1/jobs by default.")
    max_page_size: int = Field(100, description="Most jobs per page of GET /v1/jobs.")
    report_max_rows: int = Field(
        10_000,
        description="Most rows one GET /v1/reports/usage answers (more: 422, narrow the range "
        "or group by fewer keys).",
    )
    savings_baseline_file: Path | None = Field(
        None,
        description="JSON evaluation table of coordinator-alone cost per job, per domain "
        '({"source": ..., "domains": {"math": {"mean_cost": "0.0012", "sample_size": 500}}}); '
        "the savings report's `offline_table` estimate.",
    )
    ledger_check_interval_s: float = Field(
        900.0,
        gt=0,
        description="How often each API process verifies the ledger for /metrics "
        "(tandem_ledger_problems, what `tandem ledger verify` checks); the check reads every "
        "budget and ledger entry.",
    )
    savings_min_shadow_jobs: int = Field(
        30,
        description="Coordinator-alone runs a domain needs in the report's scope and range "
        "before the savings report measures with them: shadow runs paired with the tenants' "
        "jobs (`shadow`, see TANDEM_SHADOW_FRACTION) first, else succeeded llm_only jobs the "
        "tenants submitted (`llm_only_jobs`); else the offline table.",
    )

    @property
    def busy_timeout_s(self) -> float:
        """How long a request waits on a dependency that is up: for a pooled connection, for a
        new connection made on the event loop, for a reply. Never under 5 s: a burst of requests
        keeps the loop busy, and a busy process is not a down dependency (a down one refuses
        its port at once, which no timeout waits for)."""
        return max(self.dependency_timeout_s, 5.0)


@lru_cache
def get_api_settings() -> ApiSettings:
    return ApiSettings()
