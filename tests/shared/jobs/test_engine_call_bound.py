"""An engine call is bounded by the task's soft time limit whatever the Celery pool: the
threads and solo pools enforce no Celery time limit, so the step's wait is cut instead."""

from __future__ import annotations

import asyncio
import time

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from shared.db.models import Role
from shared.engines.base import EngineClient
from shared.engines.config import engine_config
from shared.jobs.runner import _EngineLoop


def test_a_call_past_the_bound_is_cancelled_and_reported_as_past_the_time_limit() -> None:
    engines = _EngineLoop()
    cancelled = asyncio.Event()

    async def stalled(client: EngineClient) -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "answered"

    started = time.monotonic()
    with pytest.raises(SoftTimeLimitExceeded, match=r"still running after 0\.2 s"):
        engines.run(engine_config(Role.EXECUTOR), stalled, timeout_s=0.2)
    assert time.monotonic() - started < 5
    deadline = time.monotonic() + 5
    while not cancelled.is_set():  # the coroutine is cancelled on the engine loop, not left
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_a_call_within_the_bound_returns_its_result() -> None:
    async def quick(client: EngineClient) -> str:
        await asyncio.sleep(0.01)
        return "answered"

    assert _EngineLoop().run(engine_config(Role.EXECUTOR), quick, timeout_s=5) == "answered"
