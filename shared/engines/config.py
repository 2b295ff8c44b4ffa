"""Which engine serves each role, and the model identity behind it.

Each role reads its own variables: ``TANDEM_COORDINATOR_ENGINE_*``, ``TANDEM_EXECUTOR_ENGINE_*``
and ``TANDEM_SCORER_ENGINE_*``. The scorer runs the executor's model (its prompt log-probs are
the classifier's features), so it falls back to the executor's engine unless its URL is set.
The defaults point at the local stack: Gemma 3 270M as the coordinator on port 8081 and
SmolLM2-135M as the executor on port 8082, with illustrative prices.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property, lru_cache

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.db.models import Role
from shared.engines.base import ModelProfile
from shared.engines.retry import RetryPolicy
from shared.engines.role_settings import EngineKind, EngineRoleSettings
from shared.errors import ConfigurationError


class CoordinatorEngineSettings(EngineRoleSettings):
    model_config = SettingsConfigDict(env_prefix="TANDEM_COORDINATOR_ENGINE_")

    url: str = Field(
        "http://127.0.0.1:8081", description="Base URL of the coordinator's (LLM's) engine."
    )
    model_id: str = Field("gemma3-270m", description="Model id the coordinator engine reports.")
    model_parameters: int = Field(
        268_098_176, description="Parameter count of the coordinator model (FLOPs)."
    )
    price_input_per_mtok: Decimal = Field(
        Decimal("0.50"), description="Coordinator price per million prompt tokens."
    )
    price_output_per_mtok: Decimal = Field(
        Decimal("1.50"), description="Coordinator price per million generated tokens."
    )


class ExecutorEngineSettings(EngineRoleSettings):
    model_config = SettingsConfigDict(env_prefix="TANDEM_EXECUTOR_ENGINE_")

    url: str = Field(
        "http://127.0.0.1:8082", description="Base URL of the executor's (SLM's) engine."
    )
    model_id: str = Field("smollm2-135m", description="Model id the executor engine reports.")
    model_parameters: int = Field(
        134_515_008, description="Parameter count of the executor model (FLOPs)."
    )
    price_input_per_mtok: Decimal = Field(
        Decimal("0.05"), description="Executor price per million prompt tokens."
    )
    price_output_per_mtok: Decimal = Field(
        Decimal("0.15"), description="Executor price per million generated tokens."
    )


class ScorerEngineSettings(EngineRoleSettings):
    model_config = SettingsConfigDict(env_prefix="TANDEM_SCORER_ENGINE_")

    url: str = Field(
        "",
        description="Engine for the scorer's prompt log-probs; empty: the executor's engine "
        "and model (every other scorer variable is then ignored).",
    )


ROLE_SETTINGS: dict[Role, type[EngineRoleSettings]] = {
    Role.COORDINATOR: CoordinatorEngineSettings,
    Role.EXECUTOR: ExecutorEngineSettings,
    Role.SCORER: ScorerEngineSettings,
}


@dataclass(frozen=True)
class EngineConfig:
    """Everything a client needs to reach one engine, resolved from settings or built by hand."""

    url: str
    profile: ModelProfile
    kind: EngineKind = EngineKind.TGI
    role: Role | None = None
    timeout_s: float = 300.0
    connect_timeout_s: float = 5.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    api_key: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    check_model: bool = True
    openai_prompt_logprobs: str = "echo"

    @cached_property
    def key(self) -> str:
        """Identifies the configuration: a worker keeps one long-lived client per key."""
        return repr(self)

    @property
    def engine_name(self) -> str:
        """How errors and logs name this engine: role, kind and address."""
        who = f"{self.role.value} " if self.role else ""
        return f"{who}{self.kind.value} engine at {self.url}"

    @classmethod
    def from_settings(cls, settings: EngineRoleSettings, role: Role | None = None) -> EngineConfig:
        if not settings.url:
            raise ConfigurationError(
                f"no engine URL configured for {role.value if role else 'this role'}: "
                f"set TANDEM_{(role.value if role else 'ROLE').upper()}_ENGINE_URL",
                field="url",
            )
        return cls(
            url=settings.url.rstrip("/"),
            kind=settings.kind,
            role=role,
            profile=ModelProfile(
                name=settings.model_id,
                parameters=settings.model_parameters,
                price_input_per_mtok=settings.price_input_per_mtok,
                price_output_per_mtok=settings.price_output_per_mtok,
            ),
            timeout_s=settings.timeout_s,
            connect_timeout_s=settings.connect_timeout_s,
            retry=RetryPolicy(
                attempts=settings.max_attempts,
                backoff_s=settings.backoff_s,
                backoff_max_s=settings.backoff_max_s,
            ),
            api_key=settings.api_key.get_secret_value() if settings.api_key else None,
            check_model=settings.check_model,
            openai_prompt_logprobs=settings.openai_prompt_logprobs,
        )


def engine_config(role: Role | str) -> EngineConfig:
    """The engine configured for ``role``.

    Building the settings costs about a millisecond, which every engine call would pay, so the
    result is kept for as long as the process's engine variables stay the same; a changed
    variable (a test, a reconfigured process) is read on the next call.
    """
    return _engine_config(Role(role), _engine_environment())


def engine_configs(*roles: Role) -> tuple[EngineConfig, ...]:
    """:func:`engine_config` of several roles, the environment read once for all of them (the
    read is most of what a kept configuration costs)."""
    environment = _engine_environment()
    return tuple(_engine_config(role, environment) for role in roles)


def _engine_environment() -> tuple[object, ...]:
    """The engine variables' current values, as the cache key of :func:`_engine_config`.

    Read from the environment's underlying mapping where it has one (CPython keeps the
    encoded names and values in ``os.environ._data``): ``os.environ.get`` encodes each name
    and decodes each value in Python, about 35 µs for these variables on every engine call
    against about 1 µs this way."""
    if _RAW_ENVIRON is not None:
        return tuple(map(_RAW_ENVIRON.get, _ENGINE_KEYS))
    return tuple(map(os.environ.get, _ENGINE_VARIABLES))


# Every variable the roles' settings read (their prefix and field names).
_ENGINE_VARIABLES = tuple(
    f"{settings.model_config.get('env_prefix', '')}{name}".upper()
    for settings in ROLE_SETTINGS.values()
    for name in settings.model_fields
)
_RAW_ENVIRON: dict[object, object] | None = getattr(os.environ, "_data", None)
_ENGINE_KEYS = tuple(os.environ.encodekey(name) for name in _ENGINE_VARIABLES)


@lru_cache(maxsize=16)
def _engine_config(role: Role, _environment: tuple[object, ...]) -> EngineConfig:
    if role is Role.SCORER:
        scorer = ScorerEngineSettings()
        if not scorer.url:
            return EngineConfig.from_settings(ExecutorEngineSettings(), Role.SCORER)
        return EngineConfig.from_settings(scorer, Role.SCORER)
    return EngineConfig.from_settings(ROLE_SETTINGS[role](), role)
