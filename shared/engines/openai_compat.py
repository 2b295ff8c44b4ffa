"""Adapter for OpenAI-compatible engines (vLLM, SGLang) through the ``openai`` package.

Uses the completions API (plain prompts, like TGI's ``/generate``), with the client's own
retries off: retries are ours, bounded and jittered, the same as for TGI. Token counts come
from the response's ``usage``.

Prompt log-probs use the engine's own option: ``echo`` with ``logprobs`` (vLLM and SGLang), or
vLLM's ``prompt_logprobs`` extension. Semantics are aligned with TGI's: a stop sequence that
ended the generation is part of the returned text, and the finish reason is one of ``length``,
``eos_token`` or ``stop_sequence``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import httpx2
import openai
from openai import AsyncOpenAI

from shared.engines.base import EngineInfo, Generation, ModelProfile, StreamChunk, TokenLogprob
from shared.engines.config import EngineConfig
from shared.engines.errors import EngineError, engine_error
from shared.engines.retry import stream_with_retries, with_retries

ROUTE_COMPLETIONS = "POST /v1/completions"
ROUTE_MODELS = "GET /v1/models"
ROUTE_HEALTH = "GET /health"


def map_error(error: BaseException, *, engine: str, route: str) -> EngineError | None:
    """The typed error for an exception raised by the openai client; None if foreign."""
    if isinstance(error, EngineError):
        return error
    if isinstance(error, openai.APITimeoutError):
        return engine_error(
            f"timed out: {error}", engine=engine, route=route, reason="timeout", transient=True
        )
    if isinstance(error, openai.APIConnectionError):
        return engine_error(
            f"connection failed: {error.__cause__ or error!r}",
            engine=engine,
            route=route,
            reason="connection",
            transient=True,
        )
    if isinstance(error, openai.APIStatusError):
        return engine_error(
            error.message, engine=engine, route=route, status=error.status_code, reason="http"
        )
    if isinstance(error, httpx.TimeoutException | httpx.TransportError | httpx2.TransportError):
        return engine_error(
            f"connection failed: {error!r}",
            engine=engine,
            route=route,
            reason="connection",
            transient=True,
        )
    return None


def _extra(obj: Any, name: str) -> Any:
    """A field the engine adds beyond OpenAI's schema (vLLM's ``stop_reason`` ...)."""
    extra = getattr(obj, "model_extra", None) or {}
    return extra.get(name, getattr(obj, name, None))


def _cached_tokens(usage: Any) -> int:
    """Prompt tokens the engine served from its prefix cache (``usage.prompt_tokens_details``;
    engines without prefix caching leave it out)."""
    details = getattr(usage, "prompt_tokens_details", None)
    return int(getattr(details, "cached_tokens", None) or 0)


def _finish(choice: Any, text: str) -> tuple[str, str]:
    """TGI's finish reason, and the text with the matched stop sequence kept (as TGI does)."""
    reason = choice.finish_reason
    if reason == "length":
        return "length", text
    matched = _extra(choice, "stop_reason")
    if matched is None:
        matched = _extra(choice, "matched_stop")
    if isinstance(matched, str):
        return "stop_sequence", text if text.endswith(matched) else text + matched
    return "eos_token", text


class OpenAICompatClient:
    """An :class:`~shared.engines.base.EngineClient` for vLLM and SGLang."""

    kind = "openai"

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.profile: ModelProfile = config.profile
        timeout = httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s)
        self._client = AsyncOpenAI(
            base_url=f"{config.url}/v1",
            api_key=config.api_key or "none",
            timeout=httpx2.Timeout(config.timeout_s, connect=config.connect_timeout_s),
            max_retries=0,
            default_headers=dict(config.headers) or None,
        )
        self._http = httpx.AsyncClient(
            base_url=config.url, timeout=timeout, headers=dict(config.headers)
        )

    def _error(self, error: BaseException, route: str) -> BaseException:
        mapped = map_error(error, engine=self.config.engine_name, route=route)
        return mapped if mapped is not None else error

    def _request(
        self,
        prompt: str,
        max_new_tokens: int,
        stop: Sequence[str],
        seed: int | None,
        temperature: float | None,
        top_p: float | None,
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": self.profile.name,
            "prompt": prompt,
            "max_tokens": max_new_tokens,
            # OpenAI's default temperature is 1 (sampling); TGI's default is greedy.
            "temperature": 0.0 if temperature is None else temperature,
        }
        if stop:
            request["stop"] = list(stop)
        if seed is not None:
            request["seed"] = seed
        if top_p is not None:
            request["top_p"] = top_p
        return request

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
    ) -> Generation:
        request = self._request(prompt, max_new_tokens, stop, seed, temperature, top_p)
        if details:
            request["logprobs"] = 0
        echo = prompt_logprobs and self.config.openai_prompt_logprobs == "echo"
        if echo:
            request["echo"] = True
            request["logprobs"] = 0
        elif prompt_logprobs:
            request["extra_body"] = {"prompt_logprobs": 0}

        async def call() -> Generation:
            started = time.perf_counter()
            try:
                response = await self._client.completions.create(**request)
            except Exception as error:
                raise self._error(error, ROUTE_COMPLETIONS) from error
            return self._generation(response, prompt, echo, time.perf_counter() - started)

        return await with_retries(call, self.config.retry)

    def _generation(self, response: Any, prompt: str, echo: bool, latency: float) -> Generation:
        choice = response.choices[0]
        usage = response.usage
        if usage is None:
            raise engine_error(
                "the response has no usage; token counts are required",
                engine=self.config.engine_name,
                route=ROUTE_COMPLETIONS,
                reason="protocol",
            )
        text = choice.text
        tokens: list[TokenLogprob] = []
        if choice.logprobs is not None and choice.logprobs.tokens is not None:
            logprobs = choice.logprobs.token_logprobs or [None] * len(choice.logprobs.tokens)
            tokens = [
                TokenLogprob(text=t, logprob=lp)
                for t, lp in zip(choice.logprobs.tokens, logprobs, strict=False)
            ]
        prompt_tokens: list[TokenLogprob] = []
        if echo:
            prompt_tokens = tokens[: usage.prompt_tokens]
            tokens = tokens[usage.prompt_tokens :]
            text = text[len(prompt) :] if text.startswith(prompt) else text
        elif (raw := _extra(choice, "prompt_logprobs")) is not None:
            prompt_tokens = [_vllm_prompt_token(entry) for entry in raw]
        finish_reason, text = _finish(choice, text)
        return Generation(
            text=text,
            finish_reason=finish_reason,
            prompt_tokens=usage.prompt_tokens,
            generated_tokens=usage.completion_tokens,
            token_logprobs=tuple(tokens),
            prompt_logprobs=tuple(prompt_tokens),
            latency_s=latency,
            cached_tokens=_cached_tokens(usage),
        )

    async def _stream_once(self, request: dict[str, Any]) -> AsyncIterator[StreamChunk]:
        started = time.perf_counter()
        text, finish_choice, usage = "", None, None
        try:
            stream = await self._client.completions.create(
                **request, stream=True, stream_options={"include_usage": True}
            )
            async for chunk in stream:
                if chunk.usage is not None:
                    usage = chunk.usage
                for choice in chunk.choices:
                    if choice.text:
                        text += choice.text
                        yield StreamChunk(text=choice.text)
                    if choice.finish_reason is not None:
                        finish_choice = choice
        except Exception as error:
            raise self._error(error, ROUTE_COMPLETIONS) from error
        if finish_choice is None or usage is None:
            raise engine_error(
                "the stream ended without a finish reason and usage",
                engine=self.config.engine_name,
                route=ROUTE_COMPLETIONS,
                reason="incomplete_stream",
                transient=True,
            )
        finish_reason, full = _finish(finish_choice, text)
        if len(full) > len(text):
            yield StreamChunk(text=full[len(text) :])
        yield StreamChunk(
            text="",
            final=Generation(
                text=full,
                finish_reason=finish_reason,
                prompt_tokens=usage.prompt_tokens,
                generated_tokens=usage.completion_tokens,
                latency_s=time.perf_counter() - started,
                cached_tokens=_cached_tokens(usage),
            ),
        )

    async def generate_stream(
        self,
        prompt: str,
        *,
        max_new_tokens: int,
        stop: Sequence[str] = (),
        seed: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
    ) -> AsyncIterator[StreamChunk]:
        """Tokens as they come; transient failures are retried only before the first token."""
        request = self._request(prompt, max_new_tokens, stop, seed, temperature, top_p)
        async for chunk in stream_with_retries(
            lambda: self._stream_once(request), self.config.retry
        ):
            yield chunk

    async def prompt_logprobs(self, prompt: str) -> Generation:
        return await self.generate(prompt, max_new_tokens=1, prompt_logprobs=True)

    async def info(self) -> EngineInfo:
        async def call() -> EngineInfo:
            try:
                models = await self._client.models.list()
            except Exception as error:
                raise self._error(error, ROUTE_MODELS) from error
            cards = list(models.data)
            card = next(
                (c for c in cards if c.id == self.profile.name), cards[0] if cards else None
            )
            if card is None:
                raise engine_error(
                    "the engine serves no model",
                    engine=self.config.engine_name,
                    route=ROUTE_MODELS,
                    reason="no_model",
                )
            max_len = _extra(card, "max_model_len")
            return EngineInfo(
                model_id=card.id,
                engine=self.kind,
                max_total_tokens=int(max_len) if max_len is not None else None,
            )

        return await with_retries(call, self.config.retry)

    async def health(self) -> bool:
        try:
            response = await self._http.get("/health")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def aclose(self) -> None:
        await self._client.close()
        await self._http.aclose()


def _vllm_prompt_token(entry: dict[str, Any] | None) -> TokenLogprob:
    """One entry of vLLM's ``prompt_logprobs``: ``{token_id: {logprob, decoded_token, ...}}``."""
    if not entry:
        return TokenLogprob(text="", logprob=None)
    token_id, data = next(iter(entry.items()))
    return TokenLogprob(
        text=str(data.get("decoded_token") or ""),
        logprob=float(data["logprob"]),
        token_id=int(token_id),
    )
