"""The decode loop the server runs for every request, whatever the backend.

Validation (TGI's messages), truncation, the prefill, then one token at a time with stop
sequences, EOS and the token budget checked here, plus the injected faults. The routes turn
the events into TGI's JSON or SSE; keeping the loop in one place keeps ``/generate``,
``/generate_stream`` and the OpenAI routes identical in what they generate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

from services.engine.backends.base import (
    Backend,
    PromptToken,
    RequestContext,
    SamplingParams,
    Token,
)
from services.engine.faults import ERROR_TYPES, Fault, FaultInjector
from services.engine.metrics import EngineMetrics
from services.engine.schemas import (
    GenerateParameters,
    TGIError,
    check_parameters,
    overloaded,
    validation_error,
)
from services.engine.settings import EngineServerSettings

DEFAULT_MAX_NEW_TOKENS = 1024


class InjectedDisconnect(Exception):
    """Raised mid-response to drop the connection (an injected fault, not a bug)."""


@dataclass
class Prepared:
    inputs: str
    ids: list[int]
    params: SamplingParams
    stop: list[str]
    prompt_logprobs: bool
    fault: Fault | None
    context: RequestContext
    started: float = field(default_factory=time.perf_counter)


@dataclass
class Outcome:
    text: str
    finish_reason: str  # "length", "eos_token" or "stop_sequence"
    tokens: list[Token]
    prompt: list[PromptToken]
    seed: int | None
    cached_tokens: int = 0  # prompt tokens served from the prefix cache, not computed

    @property
    def generated_tokens(self) -> int:
        return len(self.tokens)


class Generator:
    def __init__(
        self,
        backend: Backend,
        settings: EngineServerSettings,
        metrics: EngineMetrics,
        faults: FaultInjector,
    ) -> None:
        self.backend = backend
        self.settings = settings
        self.metrics = metrics
        self.faults = faults
        self.in_flight = 0

    def prepare(
        self,
        inputs: str,
        parameters: GenerateParameters,
        headers: Mapping[str, str],
        *,
        prompt_logprobs: bool | None = None,
    ) -> Prepared:
        started = time.perf_counter()
        lowered = {k.lower(): v for k, v in headers.items()}
        fault = self.faults.for_request(lowered)
        if fault is not None and fault.status is not None:
            status = fault.status
            kind, message = ERROR_TYPES.get(status, ("unknown", f"status {status}"))
            raise TGIError(status, f"{message} (injected fault)", kind)
        p = parameters
        check_parameters(p, self.settings.max_stop_sequences)
        if not inputs:
            raise validation_error("`inputs` cannot be empty")
        ids = self.backend.encode(inputs)
        if p.truncate is not None:
            if not 0 < p.truncate <= self.settings.max_input_tokens:
                raise validation_error(
                    "`truncate` must be strictly positive and less than "
                    f"{self.settings.max_input_tokens}. Given: {p.truncate}"
                )
            if len(ids) > p.truncate:
                ids = ids[-p.truncate :]
                inputs = self._text_of_last(inputs, p.truncate)
        if len(ids) > self.settings.max_input_tokens:
            raise validation_error(
                f"`inputs` must have less than {self.settings.max_input_tokens} tokens. "
                f"Given: {len(ids)}"
            )
        room = self.settings.max_total_tokens - len(ids)
        max_new = (
            p.max_new_tokens if p.max_new_tokens is not None else min(DEFAULT_MAX_NEW_TOKENS, room)
        )
        if len(ids) + max_new > self.settings.max_total_tokens:
            raise validation_error(
                f"`inputs` tokens + `max_new_tokens` must be <= {self.settings.max_total_tokens}. "
                f"Given: {len(ids)} `inputs` tokens and {max_new} `max_new_tokens`"
            )
        if self.in_flight >= self.settings.max_concurrent_requests:
            raise overloaded()
        self.metrics.validation_duration.observe(time.perf_counter() - started)
        self.metrics.max_new_tokens.observe(max_new)
        return Prepared(
            inputs=inputs,
            ids=ids,
            params=SamplingParams(
                max_new_tokens=max_new,
                do_sample=p.do_sample,
                seed=p.seed,
                temperature=p.temperature,
                top_p=p.top_p,
                top_k=p.top_k,
            ),
            stop=[s for s in p.stop if s],
            prompt_logprobs=p.decoder_input_details if prompt_logprobs is None else prompt_logprobs,
            fault=fault,
            context=RequestContext(prompt_text=inputs, headers=lowered),
            started=started,
        )

    def _text_of_last(self, inputs: str, count: int) -> str:
        """The prompt text of the last ``count`` tokens (TGI truncates from the left)."""
        tokens = self.backend.tokenize(inputs)
        return inputs[tokens[-count].start :] if len(tokens) >= count else inputs

    async def run(self, prepared: Prepared) -> AsyncIterator[Token | Outcome]:
        """Yield each token but the last, then the :class:`Outcome` (which holds the last).

        TGI's stream puts the final details on the last token's event, so the route must know
        which token is the last when it sends it.
        """
        metrics = self.metrics
        metrics.count("tgi_request_count")
        self.in_flight += 1
        metrics.batch_size.set(self.in_flight)
        fault = prepared.fault
        tokens: list[Token] = []
        try:
            inference_started = time.perf_counter()
            metrics.queue_duration.observe(inference_started - prepared.started)
            session = await self.backend.start(
                prepared.ids,
                prepared.params,
                prompt_logprobs=prepared.prompt_logprobs,
                context=prepared.context,
            )
            text, finish = "", ""
            try:
                while not finish:
                    if fault is not None:
                        await self._before_token(fault, len(tokens))
                    token = await session.step()
                    tokens.append(token)
                    if token.eos:
                        finish = "eos_token"
                    elif not token.special:
                        before = len(text)
                        text += token.text
                        if self._stopped(text, before, prepared.stop):
                            finish = "stop_sequence"
                    if not finish and len(tokens) >= prepared.params.max_new_tokens:
                        finish = "length"
                    if not finish:
                        yield token  # the last token travels in the Outcome
            finally:
                await session.aclose()
            inference = time.perf_counter() - inference_started
            metrics.inference_duration.observe(inference)
            if tokens:
                metrics.time_per_token.observe(inference / len(tokens))
            metrics.generated_tokens.observe(len(tokens))
            metrics.input_length.observe(len(prepared.ids))
            metrics.duration.observe(time.perf_counter() - prepared.started)
            metrics.count("tgi_request_success")
            yield Outcome(
                text=text,
                finish_reason=finish,
                tokens=tokens,
                prompt=session.prompt,
                seed=session.seed,
                cached_tokens=session.cached_tokens,
            )
        except InjectedDisconnect:
            metrics.count("tgi_request_failure", err="disconnect")
            raise
        except (asyncio.CancelledError, GeneratorExit):
            metrics.count("tgi_request_failure", err="cancelled")
            raise
        except Exception:
            metrics.count("tgi_request_failure", err="generation")
            raise
        finally:
            self.in_flight -= 1
            metrics.batch_size.set(self.in_flight)

    @staticmethod
    def _stopped(text: str, before: int, stops: list[str]) -> bool:
        """A stop sequence ends in the text this token added (it may span earlier tokens)."""
        return any(stop in text[max(0, before - len(stop) + 1) :] for stop in stops)

    @staticmethod
    async def _before_token(fault: Fault, index: int) -> None:
        if fault.disconnect_after is not None and index >= fault.disconnect_after:
            raise InjectedDisconnect(f"injected disconnect after {index} tokens")
        if fault.stall_s and index == fault.stall_after:
            await asyncio.sleep(fault.stall_s)
        if fault.slow_s:
            await asyncio.sleep(fault.slow_s)

    async def complete(self, prepared: Prepared) -> Outcome:
        outcome: Outcome | None = None
        async for event in self.run(prepared):
            if isinstance(event, Outcome):
                outcome = event
        assert outcome is not None
        return outcome
