"""TGI adapter on huggingface_hub's ``AsyncInferenceClient.text_generation``.

Why this client: it is the one TGI's documentation recommends, it is maintained (the older
``text-generation`` package pins ``huggingface-hub<1.0`` and would hold back transformers), it
parses TGI's error bodies into typed errors, and it speaks the same routes our local server
serves. What it lacks we add here: explicit timeouts, bounded retries with jitter, and typed
errors that name the engine, route, status and reason.

Token counts: TGI reports the prompt length only in the final event of a stream
(``details.input_length``) or as the prefill list, so :meth:`TGIClient.generate` consumes a
stream internally; asking for prefill log-probs on every call would make TGI compute
full-vocabulary logits over the whole prompt.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import httpx2
from huggingface_hub import AsyncInferenceClient
from huggingface_hub import constants as hf_constants
from huggingface_hub.errors import (
    GenerationError,
    HfHubHTTPError,
    IncompleteGenerationError,
    InferenceTimeoutError,
    OverloadedError,
    TextGenerationError,
    ValidationError,
)

from shared.engines.base import EngineInfo, Generation, ModelProfile, StreamChunk, TokenLogprob
from shared.engines.config import EngineConfig
from shared.engines.errors import EngineError, engine_error
from shared.engines.retry import stream_with_retries, with_retries
from shared.errors import ConfigurationError

ROUTE_GENERATE = "POST /"
ROUTE_INFO = "GET /info"

# TGI's error_type -> the status TGI answers it with, for errors that arrive inside a stream.
_ERROR_TYPE_STATUS: dict[type[TextGenerationError], int] = {
    ValidationError: 422,
    GenerationError: 424,
    OverloadedError: 429,
    IncompleteGenerationError: 500,
}


def map_error(error: BaseException, *, engine: str, route: str) -> EngineError | None:
    """The typed error for an exception raised by huggingface_hub or httpx2; None if foreign."""
    if isinstance(error, EngineError):
        return error
    if isinstance(error, InferenceTimeoutError | httpx2.TimeoutException):
        return engine_error(
            f"timed out: {error}", engine=engine, route=route, reason="timeout", transient=True
        )
    if isinstance(error, httpx2.TransportError):
        return engine_error(
            f"connection failed: {error!r}",
            engine=engine,
            route=route,
            reason="connection",
            transient=True,
        )
    if isinstance(error, TextGenerationError):
        cause = error.__cause__
        status = (
            cause.response.status_code
            if isinstance(cause, HfHubHTTPError) and cause.response is not None
            else _ERROR_TYPE_STATUS.get(type(error), 500)
        )
        return engine_error(
            str(error), engine=engine, route=route, status=status, reason=type(error).__name__
        )
    if isinstance(error, HfHubHTTPError):
        status = error.response.status_code if error.response is not None else None
        return engine_error(
            str(error).splitlines()[0], engine=engine, route=route, status=status, reason="http"
        )
    return None


def _token(text: str, logprob: float | None, token_id: int | None) -> TokenLogprob:
    return TokenLogprob(text=text, logprob=logprob, token_id=token_id)


class TGIClient:
    """An :class:`~shared.engines.base.EngineClient` for TGI and our TGI-compatible server."""

    kind = "tgi"

    def __init__(self, config: EngineConfig) -> None:
        if hf_constants.is_offline_mode():
            # huggingface_hub's offline mode blocks every request its clients make, our own
            # TGI servers included: say so at start instead of failing every task.
            raise ConfigurationError(
                f"HF_HUB_OFFLINE is set in this process, so huggingface_hub refuses to reach "
                f"the {config.engine_name}; unset it for workers (only engine servers need it, "
                "and `tandem engine serve` sets it for itself)",
                field="HF_HUB_OFFLINE",
            )
        self.config = config
        self.profile: ModelProfile = config.profile
        self._client = self._new_client()

    def _new_client(self) -> AsyncInferenceClient:
        timeout = httpx2.Timeout(self.config.timeout_s, connect=self.config.connect_timeout_s)
        return AsyncInferenceClient(
            model=self.config.url,
            provider="hf-inference",
            token=self.config.api_key,
            # The client is typed for a float but hands the value to httpx2 as it is.
            timeout=cast(float, timeout),
            headers=dict(self.config.headers),
        )

    def _error(self, error: BaseException, route: str) -> BaseException:
        mapped = map_error(error, engine=self.config.engine_name, route=route)
        return mapped if mapped is not None else error

    @staticmethod
    def _params(
        max_new_tokens: int,
        stop: Sequence[str],
        seed: int | None,
        temperature: float | None,
        top_p: float | None,
        top_k: int | None,
        do_sample: bool | None,
    ) -> dict[str, Any]:
        return {
            "max_new_tokens": max_new_tokens,
            "stop": list(stop) or None,
            "seed": seed,
            "temperature": temperature,
            "top_p": top_p,
            "top_k": top_k,
            "do_sample": do_sample,
        }

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
        top_k: int | None = None,
        do_sample: bool | None = None,
    ) -> Generation:
        params = self._params(max_new_tokens, stop, seed, temperature, top_p, top_k, do_sample)
        if prompt_logprobs:
            return await with_retries(
                lambda: self._generate_with_prefill(prompt, params), self.config.retry
            )
        return await with_retries(
            lambda: self._collect_stream(prompt, params, details), self.config.retry
        )

    async def _generate_with_prefill(self, prompt: str, params: dict[str, Any]) -> Generation:
        started = time.perf_counter()
        try:
            output = await self._client.text_generation(
                prompt, details=True, decoder_input_details=True, stream=False, **params
            )
        except Exception as error:
            raise self._error(error, ROUTE_GENERATE) from error
        details = output.details
        if details is None:
            raise engine_error(
                "the engine returned no details; is it a TGI server?",
                engine=self.config.engine_name,
                route=ROUTE_GENERATE,
                reason="protocol",
            )
        prefill = tuple(_token(t.text, t.logprob, t.id) for t in details.prefill)
        return Generation(
            text=output.generated_text,
            finish_reason=str(details.finish_reason),
            prompt_tokens=len(prefill),
            generated_tokens=details.generated_tokens,
            token_logprobs=tuple(_token(t.text, t.logprob, t.id) for t in details.tokens),
            prompt_logprobs=prefill,
            latency_s=time.perf_counter() - started,
        )

    async def _collect_stream(
        self, prompt: str, params: dict[str, Any], keep_tokens: bool
    ) -> Generation:
        final: Generation | None = None
        async for chunk in self._stream_once(prompt, params, keep_tokens=keep_tokens):
            final = chunk.final or final
        if final is None:
            raise engine_error(
                "the stream ended without a final event",
                engine=self.config.engine_name,
                route=ROUTE_GENERATE,
                reason="incomplete_stream",
                transient=True,
            )
        return final

    async def _stream_once(
        self, prompt: str, params: dict[str, Any], *, keep_tokens: bool = False
    ) -> AsyncIterator[StreamChunk]:
        """One streamed request on a client of its own.

        huggingface_hub keeps every streamed response open until its client closes, so a
        short-lived client per stream frees the connection even when the caller stops early.
        """
        started = time.perf_counter()
        client = self._new_client()
        tokens: list[TokenLogprob] = []
        try:
            stream = await client.text_generation(prompt, details=True, stream=True, **params)
            async for event in stream:
                token = event.token
                if keep_tokens:
                    tokens.append(_token(token.text, token.logprob, token.id))
                if not token.special:
                    yield StreamChunk(text=token.text)
                if event.details is not None:
                    yield StreamChunk(
                        text="",
                        final=Generation(
                            text=event.generated_text or "",
                            finish_reason=str(event.details.finish_reason),
                            prompt_tokens=event.details.input_length,
                            generated_tokens=event.details.generated_tokens,
                            token_logprobs=tuple(tokens),
                            latency_s=time.perf_counter() - started,
                        ),
                    )
        except Exception as error:
            raise self._error(error, ROUTE_GENERATE) from error
        finally:
            await client.close()

    async def generate_stream(
        self,
        prompt: str,
        *,
        max_new_tokens: int,
        stop: Sequence[str] = (),
        seed: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        do_sample: bool | None = None,
    ) -> AsyncIterator[StreamChunk]:
        """Tokens as they come; transient failures are retried only before the first token."""
        params = self._params(max_new_tokens, stop, seed, temperature, top_p, top_k, do_sample)
        async for chunk in stream_with_retries(
            lambda: self._stream_once(prompt, params), self.config.retry
        ):
            yield chunk

    async def prompt_logprobs(self, prompt: str) -> Generation:
        return await self.generate(prompt, max_new_tokens=1, prompt_logprobs=True)

    async def info(self) -> EngineInfo:
        async def call() -> EngineInfo:
            try:
                data = await self._client.get_endpoint_info()
            except Exception as error:
                raise self._error(error, ROUTE_INFO) from error
            return EngineInfo(
                model_id=str(data.get("model_id", "")),
                engine=self.kind,
                max_input_tokens=data.get("max_input_tokens") or data.get("max_input_length"),
                max_total_tokens=data.get("max_total_tokens"),
                version=data.get("version"),
            )

        return await with_retries(call, self.config.retry)

    async def health(self) -> bool:
        try:
            return await self._client.health_check()
        except (httpx2.TransportError, InferenceTimeoutError):
            return False

    async def aclose(self) -> None:
        await self._client.close()
