"""TGI adapter: every call on one long-lived, pooled HTTP client per engine.

A call whose caller wants the whole answer (most pipeline steps) is one non-streamed
``POST /generate``: no new connection, no SSL context and no token-by-token parsing per call.
Those calls go through aiohttp, whose HTTP parser is compiled: a call costs about a third of the
CPU of the same call through httpx, which parses in Python (and every step makes one or two).
TGI reports that call's prompt length only in its ``x-prompt-tokens`` header
(``details.input_length`` exists only in a stream's last event), which huggingface_hub's
``text_generation`` does not expose, hence the direct request. A call someone follows token by
token (a followed answer) is one ``POST /generate_stream`` on the same client, read event by
event; its last event carries the counts, the prefix-cache hits included, so a streamed call is
charged exactly as a whole one. huggingface_hub's client serves ``/info``.

What both lack we add here: explicit timeouts, bounded retries with jitter, and typed errors
that name the engine, route, status and reason. Asking for prefill log-probs only when the
caller wants them matters: they make TGI compute full-vocabulary logits over the whole prompt.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import aiohttp
import httpx2
from huggingface_hub import AsyncInferenceClient
from huggingface_hub import constants as hf_constants
from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError

from shared.engines.base import EngineInfo, Generation, ModelProfile, StreamChunk, TokenLogprob
from shared.engines.config import EngineConfig
from shared.engines.errors import EngineError, engine_error
from shared.engines.retry import stream_with_retries, with_retries
from shared.errors import ConfigurationError

log = logging.getLogger(__name__)

ROUTE_GENERATE = "POST /generate"
ROUTE_STREAM = "POST /generate_stream"
ROUTE_INFO = "GET /info"
PROMPT_TOKENS_HEADER = "x-prompt-tokens"
# Prompt tokens served from the engine's prefix cache (``tandem engine serve``; a TGI without
# one sends neither this nor ``details.cached_tokens``, and then none were).
CACHED_TOKENS_HEADER = "x-cached-tokens"

# TGI's error_type -> the status TGI answers it with, for errors that arrive inside a stream
# (the status line was sent before the generation failed).
_ERROR_TYPE_STATUS = {
    "validation": 422,
    "generation": 424,
    "overloaded": 429,
    "incomplete_generation": 500,
}


def map_error(error: BaseException, *, engine: str, route: str) -> EngineError | None:
    """The typed error for an exception raised by aiohttp (the generate calls) or by
    huggingface_hub's client (``/info``, ``/health``); None if foreign."""
    if isinstance(error, EngineError):
        return error
    # aiohttp's read and connect timeouts are asyncio.TimeoutError (and connection errors).
    if isinstance(error, InferenceTimeoutError | httpx2.TimeoutException | asyncio.TimeoutError):
        return engine_error(
            f"timed out: {error!r}", engine=engine, route=route, reason="timeout", transient=True
        )
    # A refused or dropped connection, or a body cut short (the engine died mid-answer).
    if isinstance(
        error, httpx2.TransportError | aiohttp.ClientConnectionError | aiohttp.ClientPayloadError
    ):
        return engine_error(
            f"connection failed: {error!r}",
            engine=engine,
            route=route,
            reason="connection",
            transient=True,
        )
    if isinstance(error, HfHubHTTPError):
        status = error.response.status_code if error.response is not None else None
        return engine_error(
            str(error).splitlines()[0], engine=engine, route=route, status=status, reason="http"
        )
    return None


def _tokens(entries: list[dict[str, Any]]) -> tuple[TokenLogprob, ...]:
    """TGI's token entries (``{"id", "text", "logprob"}``) as tokens."""
    return tuple(TokenLogprob(t["text"], t.get("logprob"), t.get("id")) for t in entries)


class TGIClient:
    """An :class:`~shared.engines.base.EngineClient` for TGI and our TGI-compatible server."""

    kind = "tgi"

    def __init__(self, config: EngineConfig, *, trace: Sequence[aiohttp.TraceConfig] = ()) -> None:
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
        headers = dict(config.headers)
        if config.api_key:
            headers["Authorization"] = f"Bearer {config.api_key}"
        self._headers = headers
        self._trace = list(trace)  # aiohttp's request hooks (what a test or tracer observes)
        base = config.url.rstrip("/")
        self._generate_url = f"{base}/generate"
        self._stream_url = f"{base}/generate_stream"
        # As before with httpx: the timeout bounds each wait for bytes, not the whole answer.
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=config.connect_timeout_s, sock_read=config.timeout_s
        )
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None

    def _http(self) -> aiohttp.ClientSession:
        """The pooled session, made in the loop that uses it: a session and its connections
        belong to one event loop (a worker keeps one; a test may run several in turn)."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session_loop is not loop:
            self._session = aiohttp.ClientSession(
                headers=self._headers, timeout=self._timeout, trace_configs=self._trace
            )
            self._session_loop = loop
        return self._session

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
        return await with_retries(
            lambda: self._generate_once(prompt, params, details, prompt_logprobs),
            self.config.retry,
        )

    def _protocol_error(self, message: str, route: str = ROUTE_GENERATE) -> EngineError:
        return engine_error(message, engine=self.config.engine_name, route=route, reason="protocol")

    async def _generate_once(
        self, prompt: str, params: dict[str, Any], keep_tokens: bool, prefill: bool
    ) -> Generation:
        """One ``POST /generate`` on the pooled client: the whole answer in one response."""
        parameters = {k: v for k, v in params.items() if v is not None}
        parameters.update(details=True, decoder_input_details=prefill)
        started = time.perf_counter()
        request = {"inputs": prompt, "parameters": parameters}
        try:
            # Redirects are not followed (as with httpx): the configured engine answers itself.
            async with self._http().post(
                self._generate_url, json=request, allow_redirects=False
            ) as response:
                _log_response(response)
                body = await response.read()
                if response.status >= 300:  # a redirect is an error too
                    raise self._status_error(response, body)
                data = json.loads(body)
                headers = response.headers
        except EngineError:
            raise
        except Exception as error:
            raise self._error(error, ROUTE_GENERATE) from error
        details = data.get("details") if isinstance(data, dict) else None
        if not isinstance(details, dict):
            raise self._protocol_error("the engine returned no details; is it a TGI server?")
        prompt_tokens = _tokens(details.get("prefill") or [])
        counted = headers.get(PROMPT_TOKENS_HEADER)
        if counted is None and not prefill:
            raise self._protocol_error(
                f"the response has no {PROMPT_TOKENS_HEADER} header; token counts are required"
            )
        tokens = (details.get("tokens") or []) if keep_tokens or prefill else []
        cached = details.get("cached_tokens", headers.get(CACHED_TOKENS_HEADER, 0))
        return Generation(
            text=str(data.get("generated_text", "")),
            finish_reason=str(details.get("finish_reason")),
            prompt_tokens=int(counted) if counted is not None else len(prompt_tokens),
            generated_tokens=int(details.get("generated_tokens", 0)),
            token_logprobs=_tokens(tokens),
            prompt_logprobs=prompt_tokens,
            latency_s=time.perf_counter() - started,
            cached_tokens=int(cached or 0),
        )

    def _status_error(
        self, response: aiohttp.ClientResponse, body: bytes, route: str = ROUTE_GENERATE
    ) -> EngineError:
        """TGI's error body ``{"error", "error_type"}`` with its status, as a typed error."""
        try:
            error = json.loads(body)
        except ValueError:
            error = {}
        message = error.get("error") if isinstance(error, dict) else None
        reason = error.get("error_type") if isinstance(error, dict) else None
        text = body[:500].decode(errors="replace")
        return engine_error(
            str(message or text or response.reason),
            engine=self.config.engine_name,
            route=route,
            status=response.status,
            reason=str(reason or "http"),
        )

    async def _stream_once(self, prompt: str, params: dict[str, Any]) -> AsyncIterator[StreamChunk]:
        """One ``POST /generate_stream`` on the pooled client, read event by event.

        The response is closed when the caller stops early (its context ends), so the
        connection goes back to the pool or is dropped, never left half-read."""
        parameters = {k: v for k, v in params.items() if v is not None}
        parameters["details"] = True
        started = time.perf_counter()
        request = {"inputs": prompt, "parameters": parameters}
        try:
            async with self._http().post(
                self._stream_url, json=request, allow_redirects=False
            ) as response:
                _log_response(response)
                if response.status >= 300:  # a redirect is an error too
                    raise self._status_error(response, await response.read(), ROUTE_STREAM)
                counted = response.headers.get(PROMPT_TOKENS_HEADER)
                final: Generation | None = None
                async for line in _lines(response.content):
                    if not line.startswith("data:"):
                        continue  # blank separators, comments (keep-alives)
                    event = json.loads(line[5:])
                    if "error" in event:
                        raise self._stream_error(event)
                    token = event.get("token") or {}
                    if token.get("text") and not token.get("special"):
                        yield StreamChunk(text=str(token["text"]))
                    details = event.get("details")
                    if isinstance(details, dict):
                        final = self._final(event, details, counted, started)
                # Read to its end, so the connection goes back to the pool.
        except EngineError:
            raise
        except Exception as error:
            raise self._error(error, ROUTE_STREAM) from error
        if final is None:
            raise self._protocol_error("the stream ended without its final event", ROUTE_STREAM)
        yield StreamChunk(text="", final=final)

    @staticmethod
    def _final(
        event: dict[str, Any], details: dict[str, Any], counted: str | None, started: float
    ) -> Generation:
        prompt_tokens = details.get("input_length", counted)
        return Generation(
            text=str(event.get("generated_text") or ""),
            finish_reason=str(details.get("finish_reason")),
            prompt_tokens=int(prompt_tokens or 0),
            generated_tokens=int(details.get("generated_tokens", 0)),
            latency_s=time.perf_counter() - started,
            cached_tokens=int(details.get("cached_tokens") or 0),
        )

    def _stream_error(self, event: dict[str, Any]) -> EngineError:
        """TGI's in-stream error event (the status was sent before it failed)."""
        kind = str(event.get("error_type") or "generation")
        return engine_error(
            str(event.get("error")),
            engine=self.config.engine_name,
            route=ROUTE_STREAM,
            status=_ERROR_TYPE_STATUS.get(kind, 500),
            reason=kind,
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
        if self._session is not None and self._session_loop is asyncio.get_running_loop():
            await self._session.close()
        self._session = None


def _log_response(response: aiohttp.ClientResponse) -> None:
    """One line per engine request, as httpx writes for its own: in a worker it carries the
    job's and tenant's ids, so a job's log shows each of its model calls."""
    log.info("engine request: %s %s %d", response.method, response.url, response.status)


async def _lines(content: aiohttp.StreamReader) -> AsyncIterator[str]:
    """A server-sent event stream's lines, however the body is chunked (aiohttp's own line
    reader refuses lines past its buffer size; a final event carries the whole answer)."""
    pending = b""
    async for chunk in content.iter_any():
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.rstrip(b"\r").decode()
    if pending:
        yield pending.rstrip(b"\r").decode()
