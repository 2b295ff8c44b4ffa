from __future__ import annotations

import random

import pytest

from shared.engines.errors import EngineError, TransientEngineError, engine_error
from shared.engines.retry import RetryPolicy, with_retries
from shared.errors import TandemError, TransientError


@pytest.mark.parametrize("status", [424, 429, 502, 503, 504])
def test_transient_statuses_give_a_retryable_error(status: int) -> None:
    error = engine_error("busy", engine="e", route="POST /", status=status)
    assert isinstance(error, TransientEngineError)
    assert isinstance(error, TransientError)  # what the Celery base retries on


@pytest.mark.parametrize("status", [400, 401, 404, 422, 500])
def test_other_statuses_are_final(status: int) -> None:
    error = engine_error("bad", engine="e", route="POST /", status=status, reason="http")
    assert type(error) is EngineError
    assert isinstance(error, TandemError) and not isinstance(error, TransientError)
    body = error.to_dict()
    assert body["engine"] == "e" and body["route"] == "POST /" and body["status"] == status
    assert body["reason"] == "http" and error.message == "e POST /: bad"


def test_backoff_is_jittered_exponential_and_capped() -> None:
    policy = RetryPolicy(attempts=6, backoff_s=0.5, backoff_max_s=3.0)
    rng = random.Random(1)
    for retry, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (5, 3.0)]:
        delays = [policy.delay(retry, rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.8 * ceiling  # spread over the whole range: full jitter
        assert len({round(d, 6) for d in delays}) > 150


async def test_retries_transient_errors_then_succeeds() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise engine_error("overloaded", engine="e", route="r", status=429)
        return "ok"

    assert await with_retries(flaky, RetryPolicy(attempts=3, backoff_s=0.001)) == "ok"
    assert calls == 3


async def test_gives_up_after_the_bound_and_says_how_many_tries() -> None:
    calls = 0

    async def down() -> str:
        nonlocal calls
        calls += 1
        raise engine_error("down", engine="e", route="r", status=503)

    with pytest.raises(TransientEngineError) as caught:
        await with_retries(down, RetryPolicy(attempts=4, backoff_s=0.001))
    assert calls == 4
    assert caught.value.details["attempts"] == 4


async def test_final_errors_are_not_retried() -> None:
    calls = 0

    async def invalid() -> str:
        nonlocal calls
        calls += 1
        raise engine_error("bad input", engine="e", route="r", status=422)

    with pytest.raises(EngineError):
        await with_retries(invalid, RetryPolicy(attempts=5, backoff_s=0.001))
    assert calls == 1
