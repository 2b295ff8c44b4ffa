"""A misbehaving engine (the simulator's injected faults): transient failures are retried and
the job succeeds, charged once; an engine that keeps failing fails the job with the engine's
cause and releases the rest of its money."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.outcomes import (
    MACHINERY_CAUSES,
    assert_books_balance,
    assert_charged_once,
    assert_succeeded_once,
    wait_ended,
)
from tests.faults.stack import Engine, FaultStack

pytestmark = [pytest.mark.e2e, pytest.mark.faults]


@pytest.fixture
def faulty(stack: FaultStack) -> Iterator[dict[str, Engine]]:
    """The stack's engines, to be restarted with faults; healthy again afterwards."""
    yield stack.engines
    for engine in stack.engines.values():
        if engine.faults:
            engine.restart()


def test_a_mid_stream_disconnect_and_503s_are_retried(
    stack: FaultStack, faulty: dict[str, Engine]
) -> None:
    coordinator, executor = faulty["coordinator"], faulty["executor"]
    coordinator.restart("disconnect=3;times=1")  # the first insight response drops mid-way
    executor.restart("status=503;times=2")  # serves the scorer's log-probs and the answer
    tenant = stack.tenant()
    job_id = tenant.submit("What is 23 * 4 - 5?")
    job = wait_ended(stack.database_url, [job_id], timeout_s=60)[job_id]
    # The faults did happen, and were retried.
    assert (coordinator.failures("disconnect"), executor.failures("unhealthy")) == (1, 2)
    assert_succeeded_once(stack.database_url, job)
    assert_books_balance(stack.database_url, tenant.id)


def test_an_engine_that_keeps_failing_fails_the_job_with_its_cause(
    stack: FaultStack, faulty: dict[str, Engine]
) -> None:
    faulty["coordinator"].restart("status=503")  # every insight call
    tenant = stack.tenant()
    job_id = tenant.submit("What is 44 * 2 + 1?")
    job = wait_ended(stack.database_url, [job_id], timeout_s=90)[job_id]
    assert job.status == "failed"
    assert job.error_code not in MACHINERY_CAUSES, (job.error_code, job.error_message)
    # The engine's own words for its 503 (TGI's error body), not the machinery's.
    assert job.error_message is not None and "unhealthy" in job.error_message, job.error_message
    # Charged what the calls it made cost (level 0's score), the rest of its hold released.
    assert_charged_once(stack.database_url, job)
    assert job.cost > 0
    assert_books_balance(stack.database_url, tenant.id)
