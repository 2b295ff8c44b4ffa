"""Hundreds of simultaneous submissions against a small cap, from several processes, into two
API server processes; settlements run at the same time. The cap is never overshot and every
admitted job settles into a ledger whose invariants hold."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest
from sqlalchemy import ColumnElement, Select, func, select

from services.api.plans import cost_of, load_profiles, requested_plan, template_for
from services.api.settings import ApiSettings
from shared.budgets import settle, verify_ledger
from shared.db.models import Budget, Domain, Job, JobStatus, KeyBudget, LedgerEntry, Policy
from shared.db.session import unit_of_work
from shared.settings import DEV_ADMIN_KEY
from tandem.stack.processes import serving_api
from tests.services.api.conftest import purge_queues

PROCESSES = 4
PER_PROCESS = 60
QUESTION = "Integrate x^2 from 0 to 3."


def submit_many(args: tuple[str, str, int, int]) -> list[int]:
    """One client process: many threads, one submission each."""
    url, key, count, offset = args

    def one(i: int) -> int:
        with httpx.Client(base_url=url, timeout=60) as client:
            return client.post(
                "/v1/jobs",
                headers={"Authorization": f"Bearer {key}"},
                json={
                    "question": QUESTION,
                    "domain": "math",
                    "allow_shrink": (offset + i) % 2 == 0,
                },
            ).status_code

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


class ApiProcesses(NamedTuple):
    url: str
    log: Path

    def warnings(self) -> list[str]:
        """What the servers logged as going wrong: why a request was not answered as expected."""
        return [
            line
            for line in self.log.read_text().splitlines()
            if "WARNING" in line or "ERROR" in line
        ]


@pytest.fixture(scope="module")
def api_processes(
    database_url: str, api_redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiProcesses]:
    env = {
        "TANDEM_LOG_LEVEL": "WARNING",
        "TANDEM_REDIS_URL": api_redis_url,
        # The burst opens the API's connections on its busy event loop: a connect timeout
        # that bounded those waits answered 503s here with the database up (it did at 1 s on a
        # loaded machine, and does at this value).
        "TANDEM_DEPENDENCY_TIMEOUT_S": "0.05",
    }
    log = tmp_path_factory.mktemp("api") / "api.log"
    try:
        with serving_api(env, workers=2, log=log) as (url, _):
            yield ApiProcesses(url, log)
    finally:
        purge_queues(api_redis_url)


def one_plan_cost() -> Decimal:
    """The worst-case cost of one default tandem plan for QUESTION: caps are counted in it."""
    profiles = load_profiles()
    plan = requested_plan(ApiSettings(), Domain.MATH, Policy.TANDEM, None, None, None)
    return cost_of(plan, profiles, QUESTION, template_for(Domain.MATH, profiles))


def settle_while_submitting(
    done: threading.Event,
    used: Select[Decimal, Decimal],
    queued: ColumnElement[bool],
    cap: Decimal,
    per_round: int,
) -> tuple[threading.Thread, list[Decimal], set[uuid.UUID]]:
    """A thread that, until ``done``, samples spent + reserved (``used``) against ``cap`` and
    settles up to ``per_round`` of the ``queued`` jobs each round; started, with what it saw
    over the cap and the jobs it settled."""
    overshoots: list[Decimal] = []
    settled: set[uuid.UUID] = set()

    def run() -> None:
        while not done.is_set():
            with unit_of_work() as session:
                row = session.execute(used).one_or_none()
                if row is not None and row[0] + row[1] > cap:
                    overshoots.append(row[0] + row[1])
                jobs = session.execute(
                    select(Job.id, Job.reserved_amount).where(
                        queued, Job.status == JobStatus.QUEUED.value
                    )
                ).all()
            for job_id, reserved in jobs[:per_round]:
                with unit_of_work() as session:
                    session.get(Job, job_id).status = JobStatus.SUCCEEDED.value  # type: ignore[union-attr]
                    settle(session, job_id, reserved / 3)
                settled.add(job_id)
            time.sleep(0.01)

    watcher = threading.Thread(target=run)
    watcher.start()
    return watcher, overshoots, settled


def test_concurrent_submissions_never_overshoot_the_cap(api_processes: ApiProcesses) -> None:
    full = one_plan_cost()
    cap = (full * Decimal("12.5")).quantize(Decimal("1e-9"))
    admin = httpx.Client(base_url=api_processes.url, headers={"X-Admin-Key": DEV_ADMIN_KEY})
    tenant = admin.post(
        "/v1/admin/tenants", json={"name": f"crowd-{uuid.uuid4().hex[:8]}", "budget_cap": str(cap)}
    ).json()
    tenant_id = uuid.UUID(tenant["id"])
    key = admin.post(f"/v1/admin/tenants/{tenant_id}/keys", json={}).json()["key"]

    done = threading.Event()
    watcher, overshoots, settled = settle_while_submitting(
        done,
        select(Budget.spent, Budget.reserved).where(Budget.tenant_id == tenant_id),
        Job.tenant_id == tenant_id,
        cap,
        per_round=5,
    )
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        results = pool.map(
            submit_many,
            [(api_processes.url, key, PER_PROCESS, p * PER_PROCESS) for p in range(PROCESSES)],
        )
    done.set()
    watcher.join()
    codes = [code for batch in results for code in batch]
    assert len(codes) == PROCESSES * PER_PROCESS
    assert set(codes) <= {202, 402}, (sorted(set(codes)), api_processes.warnings())
    assert codes.count(202) >= 12 and codes.count(402) > 0
    assert overshoots == []

    with unit_of_work() as session:
        for job_id in session.execute(
            select(Job.id).where(Job.tenant_id == tenant_id, Job.status == "queued")
        ).scalars():
            settle(session, job_id, Decimal(0))
    with unit_of_work() as session:
        budget = session.execute(select(Budget).where(Budget.tenant_id == tenant_id)).scalar_one()
        admitted = session.execute(select(Job.id).where(Job.tenant_id == tenant_id)).all()
        reserves = session.execute(
            select(LedgerEntry.amount).where(
                LedgerEntry.tenant_id == tenant_id, LedgerEntry.kind == "reserve"
            )
        ).scalars()
        settles = session.execute(
            select(LedgerEntry.job_id).where(
                LedgerEntry.tenant_id == tenant_id, LedgerEntry.kind == "settle"
            )
        ).all()
        assert len(admitted) == codes.count(202) == len(settles)
        assert sum(reserves, Decimal(0)) > cap / 2
        assert budget.reserved == 0 and budget.spent <= cap
        assert verify_ledger(session) == []
    assert settled, "settlements ran concurrently with submissions"


def test_concurrent_submissions_never_overshoot_a_key_cap_under_a_larger_tenant_cap(
    api_processes: ApiProcesses,
) -> None:
    """A key capped at a few jobs' worth, under a tenant cap with room for many: the key's row
    is held in the same statement as the tenant's, so its cap is exact too."""
    full = one_plan_cost()
    key_cap = (full * Decimal("4.5")).quantize(Decimal("1e-9"))
    admin = httpx.Client(base_url=api_processes.url, headers={"X-Admin-Key": DEV_ADMIN_KEY})
    tenant = admin.post(
        "/v1/admin/tenants",
        json={"name": f"keyed-{uuid.uuid4().hex[:8]}", "budget_cap": str(full * 100)},
    ).json()
    tenant_id = uuid.UUID(tenant["id"])
    issued = admin.post(
        f"/v1/admin/tenants/{tenant_id}/keys", json={"budget_cap": str(key_cap)}
    ).json()
    key_id = uuid.UUID(issued["id"])

    done = threading.Event()
    watcher, overshoots, _ = settle_while_submitting(
        done,
        select(KeyBudget.spent, KeyBudget.reserved).where(KeyBudget.api_key_id == key_id),
        Job.api_key_id == key_id,
        key_cap,
        per_round=2,
    )
    # Two batches of concurrent clients from this process (threads: the server processes are
    # where admissions race, and spawning client processes would cost more than the test).
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(
            pool.map(
                submit_many, [(api_processes.url, issued["key"], 24, p * 24) for p in range(2)]
            )
        )
    done.set()
    watcher.join()
    codes = [code for batch in results for code in batch]
    assert set(codes) <= {202, 402}, (sorted(set(codes)), api_processes.warnings())
    assert codes.count(202) >= 4 and codes.count(402) > 0
    assert overshoots == []
    # With nothing settling any more, the key's row alone decides: each full plan is admitted
    # while it fits (settlements at a third of the hold freed room during the batches), and the
    # first that does not fit is refused with the key's own code.
    used = select(KeyBudget.spent, KeyBudget.reserved).where(KeyBudget.api_key_id == key_id)
    for _ in range(5):  # the key's cap holds 4.5 full plans
        with unit_of_work() as session:
            spent, reserved = session.execute(used).one()
        fits = spent + reserved + full <= key_cap
        last = httpx.post(
            f"{api_processes.url}/v1/jobs",
            headers={"Authorization": f"Bearer {issued['key']}"},
            json={"question": QUESTION, "domain": "math", "allow_shrink": False},
        )
        codes.append(last.status_code)
        assert last.status_code == (202 if fits else 402)
        if not fits:
            break
    assert last.status_code == 402
    assert last.json()["error"]["code"] == "key_budget_exhausted"

    with unit_of_work() as session:
        for job_id in session.execute(
            select(Job.id).where(Job.api_key_id == key_id, Job.status == "queued")
        ).scalars():
            settle(session, job_id, Decimal(0))
    with unit_of_work() as session:
        row = session.execute(select(KeyBudget).where(KeyBudget.api_key_id == key_id)).scalar_one()
        tenant_row = session.execute(
            select(Budget).where(Budget.tenant_id == tenant_id)
        ).scalar_one()
        admitted = session.execute(select(func.count()).where(Job.api_key_id == key_id)).scalar()
        assert admitted == codes.count(202)
        assert row.reserved == 0 and tenant_row.reserved == 0
        assert row.spent == tenant_row.spent <= key_cap
        assert verify_ledger(session) == []
