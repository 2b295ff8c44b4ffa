"""kill -9 of each worker service mid-step, then a restart: every job in flight ends once,
succeeded, charged once, with the books balancing.

"Mid-step" is made exact rather than timed: the test holds a row lock the victim's step needs
to record its work (the job's row for an engine step, the tenant's budget for a settlement), so
the step has done its work but committed nothing when the test sees its Postgres session wait
on that lock, and kills the worker's whole process group there. A webhook is killed mid-POST:
the receiver holds the request open.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
import redis
from sqlalchemy import Connection, select, text

from shared.db.models import Job, JobEvent, WebhookDelivery
from shared.db.session import get_engine, unit_of_work
from shared.jobs.answer_stream import Follower, key
from shared.webhooks import SIGNATURE_HEADER, verify_signature
from tests.faults.outcomes import assert_books_balance, assert_succeeded_once, wait_ended
from tests.faults.stack import STUCK_AFTER_S, FaultStack, Tenant, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

JOBS = 3
# What the job's row says while it waits for each engine service's step.
WAITING_STATUS = {"scorer": "scoring", "coordinator": "coordinating", "executor": "executing"}
# The killed step's message is sent again by the sweeper once the job has been untouched for
# its horizon (or comes back after the visibility timeout): two horizons and some slack.
RECOVERY_S = 2 * STUCK_AFTER_S + 30


def questions(n: int) -> list[str]:
    return [f"What is {n + 11} * {k + 3} + {k}?" for k in range(JOBS)]


@contextmanager
def held(stack: FaultStack, statement: str, **params: Any) -> Iterator[tuple[Connection, Any]]:
    """Hold the row locks ``statement`` (a SELECT ... FOR UPDATE) takes until the block ends;
    yields the holding connection and the statement's first value."""
    with get_engine(stack.database_url).connect() as holder:
        value = holder.execute(text(statement), params).scalar()
        try:
            yield holder, value
        finally:
            holder.rollback()


def wait_blocked_by(stack: FaultStack, holder: Connection, timeout_s: float = 30) -> None:
    """Until another session waits for a lock ``holder`` holds: the victim's step, mid-way."""
    holder_pid = holder.execute(text("SELECT pg_backend_pid()")).scalar_one()
    with stack.connection() as watcher:

        def blocked() -> bool:
            waiting: int = watcher.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"
                ),
                {"pid": holder_pid},
            ).scalar_one()
            return waiting > 0

        wait_until("the victim's step waiting on the test's lock", blocked, timeout_s, every_s=0.02)


def end_blocked_sessions(holder: Connection) -> None:
    """End the Postgres sessions waiting for a lock ``holder`` holds. A step records in one
    statement, which the server would otherwise run to its end once the lock is released,
    dead client or not: the step is killed with its session, as when the server has noticed
    that its client is gone."""
    holder.execute(
        text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"
        )
    )


@contextmanager
def job_waiting_for(
    stack: FaultStack, status: str, job_ids: list[uuid.UUID]
) -> Iterator[uuid.UUID]:
    """Lock the row of the first job seen in ``status`` (its step then cannot record) and
    yield its id while the lock is held; then end the sessions left waiting for it."""
    deadline = time.monotonic() + 60
    with stack.connection() as watcher:
        while time.monotonic() < deadline:
            found = watcher.execute(
                text("SELECT id FROM jobs WHERE id = ANY(:ids) AND status = :status LIMIT 1"),
                {"ids": job_ids, "status": status},
            ).scalar()
            if found is not None:
                statement = "SELECT status FROM jobs WHERE id = :id FOR UPDATE"
                with held(stack, statement, id=found) as (holder, locked_status):
                    # Still waiting for the step under the lock: it has not recorded yet.
                    if locked_status == status:
                        wait_blocked_by(stack, holder)
                        yield found
                        end_blocked_sessions(holder)
                        return
            time.sleep(0.02)
    raise AssertionError(f"no job reached {status} within 60 s")


def assert_every_job_succeeded_once(
    stack: FaultStack, tenant: Tenant, job_ids: list[uuid.UUID], started: float
) -> None:
    ended = wait_ended(stack.database_url, job_ids, timeout_s=RECOVERY_S)
    print(f"recovered in {time.monotonic() - started:.1f} s after the kill")
    for job in ended.values():
        assert_succeeded_once(stack.database_url, job)
    assert_books_balance(stack.database_url, tenant.id)


@pytest.mark.parametrize("service", ["coordinator", "scorer", "executor"])
def test_an_engine_worker_killed_mid_step(stack: FaultStack, service: str) -> None:
    tenant = stack.tenant()
    job_ids = [tenant.submit(q) for q in questions(len(service))]
    with job_waiting_for(stack, WAITING_STATUS[service], job_ids):
        stack.kill_worker(service)  # its engine call done, nothing recorded
        killed = time.monotonic()
    stack.start_worker(service)
    assert_every_job_succeeded_once(stack, tenant, job_ids, killed)


def test_a_followed_answer_survives_its_executor_killed_mid_step(stack: FaultStack) -> None:
    """The killed step had published its whole text; the step that runs again streams it again
    from the start. The job ends once, and a reader of the answer stream keeps one text, the one
    the job recorded."""
    tenant = stack.tenant()
    job_ids = [tenant.submit(q, stream_answer=True) for q in questions(7)]
    with job_waiting_for(stack, WAITING_STATUS["executor"], job_ids) as victim:
        stack.kill_worker("executor")
        killed = time.monotonic()
    stack.start_worker("executor")
    assert_every_job_succeeded_once(stack, tenant, job_ids, killed)
    published = redis.Redis.from_url(stack.redis_url).xrange(key(victim))
    entries = [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in published]
    follower = Follower()
    follower.take(entries)
    with unit_of_work(stack.database_url) as session:
        recorded = session.execute(select(Job.reasoning).where(Job.id == victim)).scalar_one()
    assert len({entry["a"] for entry in entries}) >= 2  # the killed run and the one after it
    assert not follower.diverged and follower.text == recorded


def test_the_accounting_worker_killed_mid_settlement(stack: FaultStack) -> None:
    tenant = stack.tenant()
    job_ids = [tenant.submit(q) for q in questions(0)]
    statement = "SELECT id FROM budgets WHERE tenant_id = :tenant FOR UPDATE"
    with held(stack, statement, tenant=tenant.id) as (holder, _):
        wait_blocked_by(stack, holder, timeout_s=60)  # a settlement, its ledger rows written
        stack.kill_worker("accounting")
        killed = time.monotonic()
    stack.start_worker("accounting")
    assert_every_job_succeeded_once(stack, tenant, job_ids, killed)


class _Receiver(BaseHTTPRequestHandler):
    """Holds the first POST open until released, running ``on_hold`` as it arrives; answers 204
    to the others."""

    on_hold: ClassVar[Callable[[], None] | None] = None
    arrived = threading.Event()
    release = threading.Event()
    delivered: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        cls = type(self)
        if not cls.arrived.is_set():
            if cls.on_hold is not None:
                cls.on_hold()
            cls.arrived.set()
            cls.release.wait(timeout=120)
            return  # its sender is dead: nothing to answer
        cls.delivered.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.on_hold = None
    _Receiver.arrived.clear()
    _Receiver.release.clear()
    _Receiver.delivered.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        _Receiver.release.set()
        server.shutdown()


def test_the_webhooks_worker_killed_mid_delivery(stack: FaultStack, receiver: str) -> None:
    tenant = stack.tenant()
    # Killed by the receiver while it holds the POST: the sender's 1 s timeout would otherwise
    # race the test's kill (a late kill finds the attempt failed and the next one delivered).
    _Receiver.on_hold = lambda: stack.kill_worker("webhooks")
    job_ids = [tenant.submit(q, webhook_url=receiver) for q in questions(1)]
    assert _Receiver.arrived.wait(timeout=60), "no webhook arrived"
    killed = time.monotonic()
    _Receiver.release.set()
    with unit_of_work(stack.database_url) as session:
        claimed = session.execute(
            select(WebhookDelivery.state, WebhookDelivery.lease_until).where(
                WebhookDelivery.job_id.in_(job_ids), WebhookDelivery.attempts == 1
            )
        ).all()
    # The killed attempt had claimed its delivery and recorded no outcome.
    assert [state for state, lease in claimed if lease is not None] == ["pending"], claimed
    stack.start_worker("webhooks")

    def delivered() -> bool:
        with unit_of_work(stack.database_url) as session:
            done = session.scalars(
                select(JobEvent.job_id).where(
                    JobEvent.job_id.in_(job_ids), JobEvent.kind == "webhook_delivered"
                )
            ).all()
        return len(done) >= len(job_ids)

    # The killed attempt's lease (4 x timeout + 30 s) must pass before the relay sends it again.
    wait_until("every webhook delivered", delivered, timeout_s=4 * 1 + 30 + RECOVERY_S)
    print(f"webhooks delivered {time.monotonic() - killed:.1f} s after the kill")
    assert_every_job_succeeded_once(stack, tenant, job_ids, killed)
    with unit_of_work(stack.database_url) as session:
        events = session.scalars(
            select(JobEvent.job_id).where(
                JobEvent.job_id.in_(job_ids),
                JobEvent.kind.in_(["webhook_delivered", "webhook_failed"]),
            )
        ).all()
        states = session.scalars(
            select(WebhookDelivery.state).where(WebhookDelivery.job_id.in_(job_ids))
        ).all()
    assert sorted(events) == sorted(job_ids)  # one outcome per job: delivered
    assert states == ["delivered"] * len(job_ids)
    received = {
        json.loads(body)["job"]["id"]
        for headers, body in _Receiver.delivered
        if verify_signature(tenant.webhook_secret, body, headers[SIGNATURE_HEADER])
    }
    assert received == {str(i) for i in job_ids}  # signed, whole, at least once each
