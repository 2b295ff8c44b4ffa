"""Bounded retries with exponential backoff and full jitter for engine calls.

Only :class:`~shared.engines.errors.TransientEngineError` is retried. Full jitter (a uniform
delay between 0 and the capped exponential) spreads the retries of many workers that failed at
the same moment, so a briefly overloaded engine is not hit again in lock-step.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from shared.engines.errors import TransientEngineError

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # total tries, the first included
    backoff_s: float = 0.5  # base of the exponential
    backoff_max_s: float = 8.0  # cap of one delay

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """Delay before retry number ``retry`` (1-based): uniform in [0, min(cap, base·2^(n-1))]."""
        ceiling = min(self.backoff_max_s, self.backoff_s * (2 ** (retry - 1)))
        return (rng or random).uniform(0.0, ceiling)


async def with_retries(call: Callable[[], Awaitable[T]], policy: RetryPolicy) -> T:
    """Run ``call`` until it succeeds, raises a non-transient error, or the tries are spent."""
    attempt = 1
    while True:
        try:
            return await call()
        except TransientEngineError as error:
            if attempt >= policy.attempts:
                error.details["attempts"] = attempt
                raise
            delay = policy.delay(attempt)
            log.warning(
                "engine call failed (%s), retry %d/%d in %.2fs",
                error.message,
                attempt,
                policy.attempts - 1,
                delay,
            )
            await asyncio.sleep(delay)
            attempt += 1


async def stream_with_retries(
    open_stream: Callable[[], AsyncIterator[T]], policy: RetryPolicy
) -> AsyncIterator[T]:
    """Yield a stream, reopening it on transient errors only before its first item.

    Once a token has been yielded it belongs to the caller; replaying the request would send
    it twice, so a failure after that is raised, not retried.
    """
    attempt = 1
    while True:
        started = False
        try:
            async for item in open_stream():
                started = True
                yield item
            return
        except TransientEngineError as error:
            if started or attempt >= policy.attempts:
                error.details["attempts"] = attempt
                raise
        await asyncio.sleep(policy.delay(attempt))
        attempt += 1
