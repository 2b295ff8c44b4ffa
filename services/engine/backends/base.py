"""What the server needs from a backend: tokenize, prefill, then one token at a time.

The server drives the decode loop itself (stop sequences, limits, streaming, client
disconnects), so a backend only knows how to produce the next token. Stepping one token per
call also lets the real backend interleave concurrent requests on its single worker thread.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int
    do_sample: bool = False
    seed: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None

    @property
    def sampling(self) -> bool:
        """TGI samples when asked to, or when any warper changes the distribution."""
        return (
            self.do_sample
            or (self.temperature is not None and self.temperature != 1.0)
            or self.top_k is not None
            or (self.top_p is not None and self.top_p < 1.0)
        )


@dataclass(frozen=True)
class PromptToken:
    id: int
    text: str
    logprob: float | None  # None for the first token


@dataclass(frozen=True)
class OffsetToken:
    """One token of ``/tokenize``: id, text and its character span in the input."""

    id: int
    text: str
    start: int
    stop: int


@dataclass(frozen=True)
class Token:
    id: int
    text: str  # the text this token adds to the output (incremental detokenization)
    logprob: float
    special: bool = False
    eos: bool = False  # generation ends after this token


@dataclass
class RequestContext:
    """Per-request facts a backend may use (the simulator reads the text and its role header)."""

    prompt_text: str = ""  # the prompt after truncation
    headers: Mapping[str, str] = field(default_factory=dict)


class Session(ABC):
    """One request's generation state (its KV cache, its sampler, its detokenizer)."""

    prompt: list[PromptToken]
    seed: int | None
    cached_tokens: int = 0  # prompt tokens served from the prefix cache, not computed

    @abstractmethod
    async def step(self) -> Token:
        """The next token."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release what the session holds (the real backend's KV cache)."""


class Backend(ABC):
    name: str  # "gguf" or "sim"
    model_id: str
    dtype: str = "n/a"
    vocab_size: int = 0

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Token ids of a prompt, special tokens (BOS) included as the model expects."""

    @abstractmethod
    def tokenize(self, text: str) -> list[OffsetToken]:
        """Tokens with character offsets (``/tokenize``)."""

    @abstractmethod
    async def start(
        self,
        ids: list[int],
        params: SamplingParams,
        *,
        prompt_logprobs: bool,
        context: RequestContext,
    ) -> Session:
        """Run the prefill; the session then yields tokens one ``step`` at a time."""

    def eos_text(self) -> str:
        """Text of the end-of-sequence token, as TGI shows it in token lists."""
        return "</s>"

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Free the model (server shutdown)."""
