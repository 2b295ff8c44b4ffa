"""A burst larger than the fleet can start within the messages' expiry: the workers drop the
late messages unstarted (Celery's ``expires``), record each as its job's ``expired`` event and
send the step again at once, as late rather than lost, however often; every job succeeds once
with the books balanced, with no sweep to bring any back."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from shared.db.models import JobEvent
from shared.jobs.repository import EXPIRED
from tests.faults.outcomes import assert_books_balance, assert_succeeded_once, wait_ended
from tests.faults.stack import FaultStack

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

# The scorer serves one step at a time in ~0.6 s (the simulator's time to first token): 80
# first steps are ~48 s of its work, four times the messages' 12 s expiry. Failed 20 of 80
# as stuck when an expired message counted as a lost one; with the expired steps left to the
# sweeper, the jobs whose messages expired never ended while it was stopped.
JOBS = 80


def test_a_burst_past_the_expiry_succeeds_once_with_no_sweep(stack: FaultStack) -> None:
    tenant = stack.tenant(cap="1000")
    stack.stop_beat()
    try:
        started = time.monotonic()
        job_ids = [tenant.submit(f"What is {k} + 9?") for k in range(JOBS)]
        ended = wait_ended(stack.database_url, job_ids, timeout_s=400)
    finally:
        stack.start_beat()
    with stack.connection() as connection:
        expired = connection.scalar(
            select(func.count()).where(JobEvent.job_id.in_(job_ids), JobEvent.kind == EXPIRED)
        )
    print(f"{JOBS} jobs ended in {time.monotonic() - started:.0f} s; {expired} messages expired")
    assert int(expired or 0) > 0  # the burst did outlast the expiry
    for job in ended.values():
        assert_succeeded_once(stack.database_url, job)
    assert_books_balance(stack.database_url, tenant.id)
