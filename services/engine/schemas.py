"""TGI's request and response bodies, and its checks (docs/architecture.md, 'Engines').

Validation messages and status codes are TGI's own, so a client that parses TGI's errors gets
the same error from the local server.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

INT64_MAX = 2**63 - 1  # TGI documents seeds as int64
INT32_MAX = 2**31 - 1  # and token counts as int32


class GenerateParameters(BaseModel):
    # Strict, as TGI's deserializer is: `"details": 0` is not a boolean, `"seed": "1"` no integer.
    model_config = ConfigDict(extra="ignore", strict=True)

    # Typed though unused, so that a malformed one is refused as TGI refuses it: this server
    # loads no LoRA adapters, and the base model answers.
    adapter_id: str | None = None
    best_of: int | None = None
    decoder_input_details: bool = False
    details: bool = True
    do_sample: bool = False
    max_new_tokens: int | None = Field(None, le=INT32_MAX)
    repetition_penalty: float | None = None
    frequency_penalty: float | None = None
    grammar: dict[str, Any] | None = None
    return_full_text: bool | None = None
    seed: int | None = Field(None, le=INT64_MAX)
    stop: list[str] = Field(default_factory=list)
    temperature: float | None = None
    top_k: int | None = Field(None, le=INT32_MAX)
    top_n_tokens: int | None = Field(None, le=INT32_MAX)
    top_p: float | None = None
    truncate: int | None = None
    typical_p: float | None = None
    watermark: bool = False


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    inputs: str
    parameters: GenerateParameters = Field(default_factory=GenerateParameters)
    stream: bool = False


class TGIError(Exception):
    """An error answered with TGI's status and body ``{"error", "error_type"}``."""

    def __init__(self, status: int, message: str, error_type: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type

    def body(self) -> dict[str, str]:
        return {"error": self.message, "error_type": self.error_type}


def validation_error(message: str) -> TGIError:
    return TGIError(422, f"Input validation error: {message}", "validation")


def overloaded() -> TGIError:
    return TGIError(429, "Model is overloaded", "overloaded")


def check_parameters(p: GenerateParameters, max_stop_sequences: int) -> None:
    """TGI's per-parameter checks (the token-length checks need the tokenized prompt)."""
    if p.best_of is not None and p.best_of != 1:
        raise validation_error("`best_of` != 1 is not supported by this server")
    if p.temperature is not None and p.temperature <= 0:
        raise validation_error("`temperature` must be strictly positive")
    if p.repetition_penalty is not None and p.repetition_penalty <= 0:
        raise validation_error("`repetition_penalty` must be strictly positive")
    if p.frequency_penalty is not None and not -2.0 <= p.frequency_penalty <= 2.0:
        raise validation_error("`frequency_penalty` must be >= -2.0 and <= 2.0")
    if p.top_p is not None and not 0.0 < p.top_p < 1.0:
        raise validation_error("`top_p` must be > 0.0 and < 1.0")
    if p.typical_p is not None and not 0.0 < p.typical_p < 1.0:
        raise validation_error("`typical_p` must be > 0.0 and < 1.0")
    if p.top_k is not None and p.top_k <= 0:
        raise validation_error("`top_k` must be strictly positive")
    if p.max_new_tokens is not None and p.max_new_tokens <= 0:
        raise validation_error("`max_new_tokens` must be strictly positive")
    if p.top_n_tokens:
        # No backend returns alternatives, so TGI's bound (max_top_n_tokens) is 0 here.
        raise validation_error(f"`top_n_tokens` must be >= 0 and <= 0. Given: {p.top_n_tokens}")
    if p.grammar is not None:
        raise validation_error("grammar is not supported by this server")
    if p.seed is not None and p.seed < 0:
        raise validation_error("`seed` must be positive")
    if len(p.stop) > max_stop_sequences:
        raise validation_error(
            f"`stop` supports up to {max_stop_sequences} stop sequences. Given: {len(p.stop)}"
        )


def token_json(token_id: int, text: str, logprob: float | None, special: bool) -> dict[str, Any]:
    return {"id": token_id, "text": text, "logprob": logprob, "special": special}
