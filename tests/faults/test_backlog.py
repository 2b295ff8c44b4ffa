"""The executor fleet down for longer than the sweeper's patience with a lost job: the jobs
waiting on its queue are queued, not lost (their messages are on the broker), so the sweeper
sends their step again but fails none of them; once the fleet is back every job ends once."""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import func, select

from services.accounting.service import REANNOUNCE_LIMIT
from shared.db.models import Job, JobEvent
from shared.jobs.repository import REANNOUNCED
from tests.faults.outcomes import assert_books_balance, assert_succeeded_once, wait_ended
from tests.faults.stack import STUCK_AFTER_S, FaultStack, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

JOBS = 4
# A lost job is announced again after two horizons untouched, and again two horizons later,
# and given up at the next look: the fleet stays down past that.
DOWN_S = 2 * (REANNOUNCE_LIMIT + 1) * STUCK_AFTER_S + 10


def statuses(stack: FaultStack, job_ids: list[uuid.UUID]) -> list[str]:
    with stack.connection() as connection:
        return list(connection.scalars(select(Job.status).where(Job.id.in_(job_ids))))


def announced_behind_backlog(stack: FaultStack, job_id: uuid.UUID) -> int:
    with stack.connection() as connection:
        count = connection.scalar(
            select(func.count()).where(
                JobEvent.job_id == job_id,
                JobEvent.kind == REANNOUNCED,
                JobEvent.data["backlog"].as_integer() > 0,
            )
        )
    return int(count or 0)


def test_jobs_queued_behind_a_stopped_fleet_are_not_given_up(stack: FaultStack) -> None:
    tenant = stack.tenant()
    stack.kill_worker("executor")
    job_ids = [tenant.submit(f"What is {k + 5} * 13?") for k in range(JOBS)]

    def all_waiting() -> bool:
        return statuses(stack, job_ids) == ["executing"] * JOBS

    wait_until("every job waiting for the executor", all_waiting, timeout_s=60)
    down_until = time.monotonic() + DOWN_S
    while time.monotonic() < down_until:
        assert "failed" not in statuses(stack, job_ids)
        time.sleep(1)
    # The sweeper did look at them, more often than it would allow a lost job.
    for job_id in job_ids:
        assert announced_behind_backlog(stack, job_id) > REANNOUNCE_LIMIT

    stack.start_worker("executor")
    back = time.monotonic()
    ended = wait_ended(stack.database_url, job_ids, timeout_s=60)
    print(f"{JOBS} jobs ended {time.monotonic() - back:.1f} s after the executor came back")
    for job in ended.values():
        assert_succeeded_once(stack.database_url, job)
    assert_books_balance(stack.database_url, tenant.id)
