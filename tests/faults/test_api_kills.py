"""The API killed with -9 in the middle of one tenant's burst of submissions, many of them
waiting in its budget's lane (services.api.jobs.lanes) or in a batch's statement: every
submission the client saw accepted is in the database, every job in the database runs to its
end once (one whose statement committed as its process died, before its first task was sent,
is announced again by the sweeper), and the books balance."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from shared.db.models import Job
from tests.faults.outcomes import assert_books_balance, assert_succeeded_once, wait_ended
from tests.faults.stack import STUCK_AFTER_S, FaultStack, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

BURST = 100
CLIENTS = 10
RECOVERY_S = 2 * STUCK_AFTER_S + 60


def submitted(stack: FaultStack, tenant_id: uuid.UUID) -> list[uuid.UUID]:
    with stack.connection() as connection:
        return list(connection.scalars(select(Job.id).where(Job.tenant_id == tenant_id)))


def test_no_accepted_job_is_lost_to_the_api_killed_mid_burst(stack: FaultStack) -> None:
    tenant = stack.tenant()
    client = tenant.client

    def submit(i: int) -> tuple[int | str, uuid.UUID | None]:
        try:
            answer = client.post(
                "/v1/jobs",
                json={"question": f"What is {i} + 7?", "domain": "math", "max_answer_tokens": 64},
            )
        except httpx.TransportError as error:  # the server died under the request
            return type(error).__name__, None
        accepted = answer.status_code == 202
        return answer.status_code, uuid.UUID(answer.json()["id"]) if accepted else None

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        futures = [pool.submit(submit, i) for i in range(BURST)]

        def under_way() -> bool:
            with stack.connection() as connection:
                count = connection.scalar(
                    select(func.count()).select_from(Job).where(Job.tenant_id == tenant.id)
                )
            return int(count or 0) >= 3  # under way, most of it still to come

        wait_until("the burst under way", under_way, timeout_s=30, every_s=0.01)
        stack.kill_api()
        answers = [future.result() for future in futures]
    killed_at = time.monotonic()
    stack.start_api()

    print("answers:", sorted((str(status) for status, _ in answers)))
    # Each request was accepted or lost its connection: never a 5xx or a half answer.
    assert all(status == 202 or isinstance(status, str) for status, _ in answers), answers
    accepted = {job_id for status, job_id in answers if job_id is not None}
    in_database = set(submitted(stack, tenant.id))
    assert accepted <= in_database
    # Some were cut off: the kill landed in the burst, not after it.
    assert any(isinstance(status, str) for status, _ in answers), answers

    ended = wait_ended(stack.database_url, sorted(in_database), timeout_s=RECOVERY_S)
    print(
        f"{len(in_database)} jobs in the database ({len(accepted)} answered 202) all ended "
        f"{time.monotonic() - killed_at:.1f} s after the kill"
    )
    for job in ended.values():
        assert_succeeded_once(stack.database_url, job)
    assert_books_balance(stack.database_url, tenant.id)
