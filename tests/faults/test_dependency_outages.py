"""Postgres, then Redis, stopped for 15 s under load and started again: no job in flight is
lost (each ends succeeded, once, charged once) and the API answers 503 within a second while
the dependency is down. The stack's own servers are stopped, never the shared test servers."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select

from shared.db.models import Job
from shared.db.session import unit_of_work
from tests.faults.outcomes import (
    TERMINAL,
    assert_books_balance,
    assert_charged_once,
    assert_succeeded_once,
    jobs,
    wait_ended,
)
from tests.faults.stack import STUCK_AFTER_S, FaultStack, Tenant, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

OUTAGE_S = 15.0
IN_FLIGHT = 5
# Once the dependency is back: workers reconnect (Celery's broker reconnection backs off up to
# a few seconds), then each job's step is retried, or announced again by the sweeper once the
# job has been untouched for its horizon.
RECOVERY_S = 2 * STUCK_AFTER_S + 45
PROMPT_503_S = 1.0


Probe = Callable[[httpx.Client, uuid.UUID], httpx.Response]


@dataclass(frozen=True)
class Outage:
    """What a dependency's outage under load left: the tenant, its jobs in flight at the time,
    and the API's answers while the dependency was down."""

    tenant: Tenant
    job_ids: list[uuid.UUID]
    answers: list[tuple[str, int | str, float]]


def under_load(stack: FaultStack, seed: int) -> tuple[Tenant, list[uuid.UUID]]:
    """A tenant with IN_FLIGHT jobs submitted, once at least two of them are mid-pipeline."""
    tenant = stack.tenant()
    job_ids = [tenant.submit(f"What is {seed + k} * {k + 2} - 1?") for k in range(IN_FLIGHT)]

    def moving() -> bool:
        rows = jobs(stack.database_url, job_ids).values()
        started = [j for j in rows if j.status not in ("queued", *TERMINAL)]
        return len(started) >= 2 and not any(j.status in TERMINAL for j in rows)

    wait_until("two jobs mid-pipeline", moving, timeout_s=30, every_s=0.05)
    return tenant, job_ids


def outage(
    stack: FaultStack,
    seed: int,
    stop: Callable[[], None],
    start: Callable[[], None],
    probes: dict[str, Probe],
) -> Outage:
    """Stop a dependency under load for OUTAGE_S, asking the API each probe about once a
    second meanwhile (probe, status or transport error, seconds it took); then start it."""
    tenant, job_ids = under_load(stack, seed)
    answers: list[tuple[str, int | str, float]] = []
    stop()
    try:
        # A client of its own: each probe's time is its own, not a pool's.
        with httpx.Client(
            base_url=str(tenant.client.base_url), headers=tenant.client.headers, timeout=30
        ) as client:
            ends = time.monotonic() + OUTAGE_S
            while time.monotonic() < ends:
                tick = time.monotonic()
                for name, probe in probes.items():
                    started = time.monotonic()
                    try:
                        status: int | str = probe(client, job_ids[0]).status_code
                    except httpx.TransportError as error:
                        status = type(error).__name__
                    answers.append((name, status, round(time.monotonic() - started, 3)))
                time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    finally:
        start()
    print("API answers while down (probe, status, s):", answers)
    return Outage(tenant, job_ids, answers)


def submit_probe(client: httpx.Client, _: uuid.UUID) -> httpx.Response:
    return client.post("/v1/jobs", json={"question": "What is 2 + 2?", "domain": "math"})


def burst_probe(client: httpx.Client, job_id: uuid.UUID) -> httpx.Response:
    """Eight submissions of one tenant at once, which share its budget's lane in the API
    (services.api.jobs.lanes): the first answer that is not a 503, else the first."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: submit_probe(client, job_id), range(8)))
    return next((a for a in answers if a.status_code != 503), answers[0])


def read_probe(client: httpx.Client, job_id: uuid.UUID) -> httpx.Response:
    return client.get(f"/v1/jobs/{job_id}")


def assert_prompt_503s(answers: list[tuple[str, int | str, float]], probe: str) -> None:
    mine = [(status, took) for name, status, took in answers if name.startswith(probe)]
    assert mine
    assert all(status == 503 for status, _ in mine), mine
    assert max(took for _, took in mine) < PROMPT_503_S, mine


def assert_no_job_lost(stack: FaultStack, jobs_in_flight: list[uuid.UUID]) -> None:
    started = time.monotonic()
    ended = wait_ended(stack.database_url, jobs_in_flight, timeout_s=RECOVERY_S)
    print(f"every job ended {time.monotonic() - started:.1f} s after the dependency was back")
    for job in ended.values():
        assert_succeeded_once(stack.database_url, job)


@pytest.fixture(scope="module")
def postgres_outage(stack: FaultStack) -> Outage:
    # Reads a few times a second: a dropped connection instead of the 503 is intermittent.
    probes: dict[str, Probe] = {
        "submit": submit_probe,
        "submit burst": burst_probe,
        **{f"read {n}": read_probe for n in range(4)},
    }
    return outage(stack, 100, stack.stop_postgres, stack.start_postgres, probes)


@pytest.fixture(scope="module")
def redis_outage(stack: FaultStack) -> Outage:
    return outage(stack, 200, stack.stop_redis, stack.start_redis, {"submit": submit_probe})


def test_no_job_in_flight_is_lost_to_a_postgres_restart(
    stack: FaultStack, postgres_outage: Outage
) -> None:
    tenant = postgres_outage.tenant
    assert_no_job_lost(stack, postgres_outage.job_ids)
    with unit_of_work(stack.database_url) as session:
        all_jobs = session.scalars(select(Job.id).where(Job.tenant_id == tenant.id)).all()
    assert sorted(all_jobs) == sorted(postgres_outage.job_ids)  # a 503 admitted nothing
    assert_books_balance(stack.database_url, tenant.id)


def test_submissions_get_a_prompt_503_while_postgres_is_down(postgres_outage: Outage) -> None:
    assert_prompt_503s(postgres_outage.answers, "submit")


def test_reads_get_a_prompt_503_while_postgres_is_down(postgres_outage: Outage) -> None:
    assert_prompt_503s(postgres_outage.answers, "read")


def test_no_job_in_flight_is_lost_to_a_redis_restart(
    stack: FaultStack, redis_outage: Outage
) -> None:
    tenant = redis_outage.tenant
    assert_no_job_lost(stack, redis_outage.job_ids)
    # A submission answered 503 may have been written before its publish failed: it must end
    # failed, charged nothing, its hold released; none may run behind the client's back.
    with unit_of_work(stack.database_url) as session:
        refused = [
            i
            for i in session.scalars(select(Job.id).where(Job.tenant_id == tenant.id))
            if i not in redis_outage.job_ids
        ]
    for job in wait_ended(stack.database_url, refused, timeout_s=RECOVERY_S).values():
        assert (job.status, job.error_code, job.cost) == ("failed", "publish_failed", Decimal(0))
        assert_charged_once(stack.database_url, job)
    assert_books_balance(stack.database_url, tenant.id)


def test_submissions_get_a_prompt_503_while_redis_is_down(redis_outage: Outage) -> None:
    assert_prompt_503s(redis_outage.answers, "submit")
