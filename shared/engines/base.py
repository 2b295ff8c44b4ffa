"""The one async interface the coordinator, scorer and executor use to reach an engine.

Adapters (TGI through huggingface_hub, OpenAI-compatible for vLLM/SGLang) implement
:class:`EngineClient`. Token counts always come from the engine's own response, never from a
local tokenizer, because they are what cost and FLOPs are charged on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple, Protocol, runtime_checkable


@dataclass(frozen=True)
class ModelProfile:
    """A model's identity as configured: checked against the engine's ``/info`` at start."""

    name: str
    parameters: int
    price_input_per_mtok: Decimal = Decimal(0)
    price_output_per_mtok: Decimal = Decimal(0)
    # Prompt tokens the engine served from its prefix cache; None: the prompt price.
    price_cached_input_per_mtok: Decimal | None = None
    # The price table row the prices come from (shared.prices); None: the environment's.
    price_id: str | None = None


class TokenLogprob(NamedTuple):
    """One token of a prompt or an answer with its log-probability. A named tuple rather than a
    frozen dataclass: a scoring call makes one per prompt token (hundreds), and a frozen
    dataclass's constructor costs nearly three times as much (0.36 against 0.13 ms for 350,
    built positionally)."""

    text: str
    logprob: float | None  # None for the first prompt token (nothing precedes it)
    token_id: int | None = None


@dataclass(frozen=True)
class Generation:
    text: str
    finish_reason: str  # "length", "eos_token" or "stop_sequence" (TGI's names)
    prompt_tokens: int
    generated_tokens: int
    token_logprobs: Sequence[TokenLogprob] = field(default_factory=tuple)  # generated tokens
    prompt_logprobs: Sequence[TokenLogprob] = field(default_factory=tuple)  # when asked
    latency_s: float = 0.0
    cached_tokens: int = 0  # of the prompt tokens, those the engine served from its prefix cache


@dataclass(frozen=True)
class StreamChunk:
    text: str  # the token's text; empty on the final chunk
    final: Generation | None = None  # set on the last chunk only


@dataclass(frozen=True)
class EngineInfo:
    model_id: str
    engine: str  # "tgi", "openai", "tandem-local"
    max_input_tokens: int | None = None
    max_total_tokens: int | None = None
    version: str | None = None


@runtime_checkable
class EngineClient(Protocol):
    profile: ModelProfile

    async def generate(
        self,
        prompt: str,
        *,
        max_new_tokens: int,
        stop: Sequence[str] = (),
        seed: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        details: bool = False,
        prompt_logprobs: bool = False,
    ) -> Generation: ...

    def generate_stream(
        self,
        prompt: str,
        *,
        max_new_tokens: int,
        stop: Sequence[str] = (),
        seed: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
    ) -> AsyncIterator[StreamChunk]: ...

    async def prompt_logprobs(self, prompt: str) -> Generation:
        """One log-prob per prompt token (``max_new_tokens=1``); counts are the engine's."""
        ...

    async def info(self) -> EngineInfo: ...

    async def health(self) -> bool: ...

    async def aclose(self) -> None: ...
