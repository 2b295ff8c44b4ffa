"""The fields every role's engine is configured with (one subclass per role in ``config``).

Kept out of ``config`` so the configuration table lists each role's variables with its own
prefix (``TANDEM_COORDINATOR_ENGINE_URL`` ...) and not this prefix-less base.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class EngineKind(StrEnum):
    TGI = "tgi"  # Hugging Face TGI, or the local TGI-compatible server
    OPENAI = "openai"  # vLLM, SGLang: the OpenAI completions API


class EngineRoleSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True, env_file=".env")

    url: str = Field(
        "",
        description="Base URL of the engine (TGI: the server root; OpenAI-compatible: root, "
        "without /v1).",
    )
    kind: EngineKind = Field(
        EngineKind.TGI,
        description="Engine API: `tgi` (TGI or `tandem engine serve`) or `openai` (vLLM, SGLang).",
    )
    model_id: str = Field(
        "",
        description="Model id the engine must report (TGI /info `model_id`, OpenAI "
        "/v1/models id); also the model name sent to OpenAI-compatible engines.",
    )
    model_parameters: int = Field(
        0, description="Parameter count of the model: FLOPs = 2 * parameters * tokens."
    )
    price_input_per_mtok: Decimal = Field(
        Decimal(0), description="Price per million prompt tokens."
    )
    price_output_per_mtok: Decimal = Field(
        Decimal(0), description="Price per million generated tokens."
    )
    timeout_s: float = Field(
        300.0,
        description="Read timeout: longest wait for a response, or for the next token of "
        "a stream (TGI's client default of 10 s is far too short for long generations).",
    )
    connect_timeout_s: float = Field(5.0, description="Timeout to open a connection.")
    max_attempts: int = Field(
        4,
        ge=1,
        description="Tries per call on transient errors (429, 503, 424, timeouts, "
        "refused connections), the first included.",
    )
    backoff_s: float = Field(0.5, description="Base of the exponential retry backoff (jittered).")
    backoff_max_s: float = Field(8.0, description="Cap of one retry delay.")
    api_key: SecretStr | None = Field(
        None, description="Bearer token sent to the engine (TGI behind a gateway, vLLM --api-key)."
    )
    check_model: bool = Field(
        True, description="At start, fail unless the engine reports the configured model_id."
    )
    openai_prompt_logprobs: Literal["echo", "vllm"] = Field(
        "echo",
        description="OpenAI-compatible prompt log-probs: `echo` (echo+logprobs, vLLM "
        "and SGLang) or `vllm` (vLLM's `prompt_logprobs` extension).",
    )
