"""Reserve, settle and verify: the money rules of docs/architecture.md, 'Money path'.

Admission holds a job's worst-case cost with one conditional UPDATE, so concurrent submissions
from any number of API replicas can never push spent + reserved over the cap. Settlement is
idempotent through the ledger's unique (job, kind): a redelivered settle task charges nothing
twice. Every amount is quantized to the schema's 12 decimal places before it is written, so the
ledger and the budget rows add up exactly.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal

from sqlalchemy.orm import Session

from shared import alerts
from shared.alerts.settings import get_alert_settings
from shared.budgets import key_repository as key_repo
from shared.budgets import repository as repo
from shared.budgets.errors import BudgetExceeded
from shared.budgets.periods import period_key
from shared.db.models import AlertThreshold, Job, LedgerKind, Tenant
from shared.errors import NotFoundError, ValidationFailed
from shared.jobs import repository as jobs_repo
from shared.metrics import RELEASED_DOLLARS, RESERVED_DOLLARS, SETTLED_DOLLARS, count_money
from shared.money import QUANTUM

log = logging.getLogger(__name__)

ZERO = Decimal(0)


def quantize_up(amount: Decimal) -> Decimal:
    """Round a reservation up: a hold must never be smaller than the worst case it covers."""
    return amount.quantize(QUANTUM, rounding=ROUND_CEILING)


def quantize(amount: Decimal) -> Decimal:
    return amount.quantize(QUANTUM, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class Reservation:
    budget_id: uuid.UUID
    period_key: str
    amount: Decimal
    cap: Decimal
    spent: Decimal
    reserved: Decimal  # after this reservation


@dataclass(frozen=True)
class Settlement:
    job_id: uuid.UUID
    charged: Decimal
    released: Decimal
    already_settled: bool
    spent: Decimal | None = None
    cap: Decimal | None = None
    # The thresholds this settlement crossed first in its period, and their webhooks in the
    # outbox: the caller publishes a delivery task for each after its commit.
    alerts: tuple[repo.CrossedAlert, ...] = ()
    deliveries: tuple[uuid.UUID, ...] = ()

    @property
    def soft_alert(self) -> bool:
        return any(alert.threshold == AlertThreshold.SOFT for alert in self.alerts)


LEDGER_PROBLEM_KINDS = ("budget", "key_budget", "job")  # what a broken invariant is about


@dataclass(frozen=True)
class LedgerProblem:
    kind: str  # one of LEDGER_PROBLEM_KINDS
    subject: str
    message: str


def current_budget(session: Session, tenant: Tenant, now: datetime | None = None) -> repo.BudgetRow:
    """The tenant's row for the current period, made on first use with the tenant's cap."""
    key = period_key(tenant.budget_period, now)
    row = repo.get_budget(session, tenant.id, key)
    if row is None:
        repo.ensure_budget(session, tenant.id, key, tenant.budget_cap)
        row = repo.get_budget(session, tenant.id, key)
    assert row is not None
    return row


def reserve(
    session: Session, tenant: Tenant, amount: Decimal, *, now: datetime | None = None
) -> Reservation:
    """Hold ``amount`` in the tenant's current period or raise :class:`BudgetExceeded`.

    On success the budget row stays locked until the caller's transaction ends, which is what
    lets the caller count the tenant's running jobs without a race.
    """
    if amount < 0:
        raise ValidationFailed("a reservation cannot be negative", field="amount")
    amount = quantize_up(amount)
    key = period_key(tenant.budget_period, now)
    repo.ensure_budget(session, tenant.id, key, tenant.budget_cap)
    row = repo.try_reserve(session, tenant.id, key, amount)
    if row is None:
        current = repo.get_budget(session, tenant.id, key)
        assert current is not None
        raise BudgetExceeded(
            f"the job's worst-case cost {amount} does not fit the {tenant.budget_period} "
            f"budget {key}: cap {current.cap}, spent {current.spent}, reserved "
            f"{current.reserved}; raise the cap or lower max_cost / levels",
            cap=current.cap,
            spent=current.spent,
            reserved=current.reserved,
            requested=amount,
            period=key,
        )
    return Reservation(row.id, key, amount, row.cap, row.spent, row.reserved)


def record_reserve(
    session: Session, tenant_id: uuid.UUID, job_id: uuid.UUID, reservation: Reservation
) -> None:
    """Write the reservation's ledger entry once the job row exists (same transaction)."""
    repo.insert_entry(
        session,
        tenant_id=tenant_id,
        budget_id=reservation.budget_id,
        job_id=job_id,
        kind=LedgerKind.RESERVE,
        amount=reservation.amount,
    )
    count_money(session, RESERVED_DOLLARS, reservation.amount)


def settle(
    session: Session, job_id: uuid.UUID, actual_cost: Decimal, *, locked: Job | None = None
) -> Settlement:
    """Charge ``actual_cost`` and release the rest of the job's hold; safe to call twice.

    The second call (a redelivered task) finds the settle entry and changes nothing. The job
    row is locked first so that concurrent settlements of one job queue behind each other;
    a caller that already holds that lock passes the job it locked as ``locked``. The job's
    cost is set on the job object: written with the session's next flush when the job is on
    it, by the caller (:func:`shared.jobs.repository.save_state`) when it is not.
    """
    if actual_cost < 0:
        raise ValidationFailed("actual cost cannot be negative", field="actual_cost")
    job = locked if locked is not None else jobs_repo.lock_job(session, job_id)
    if job is None:
        raise NotFoundError(f"job {job_id} not found", field="job_id")
    if job.budget_id is None:
        raise ValidationFailed(f"job {job_id} holds no reservation", field="job_id")
    charged = quantize(actual_cost)
    held = job.reserved_amount
    released = max(held - charged, ZERO)
    if not repo.insert_settlement(
        session,
        tenant_id=job.tenant_id,
        budget_id=job.budget_id,
        job_id=job.id,
        charged=charged,
        released=released,
        key_budget_id=job.key_budget_id,
        held=held,
    ):
        previous = repo.entry_amount(session, job.id, LedgerKind.SETTLE) or ZERO
        released = repo.entry_amount(session, job.id, LedgerKind.RELEASE) or ZERO
        return Settlement(job.id, previous, released, already_settled=True)
    if charged > held:
        # The worst case is an upper bound, so this means a cost-model bug: charge what was
        # really spent (the ledger must match the engines) and let `ledger verify` flag it.
        log.error("job %s cost %s exceeds its reservation %s", job.id, charged, held)
    settled = repo.apply_settlement(
        session, job.budget_id, charged, held, job.id, key_budget_id=job.key_budget_id
    )
    count_money(session, SETTLED_DOLLARS, charged)
    count_money(session, RELEASED_DOLLARS, released)
    job.cost = charged
    budget = settled.row
    deliveries: list[uuid.UUID] = []
    if settled.crossed:  # rare: at most twice a period per budget
        with session.no_autoflush:  # the job's cost goes out with the caller's next flush
            deliveries = alerts.announce(session, settled, get_alert_settings(), job.id)
    return Settlement(
        job.id,
        charged,
        released,
        already_settled=False,
        spent=budget.spent,
        cap=budget.cap,
        alerts=tuple(settled.crossed),
        deliveries=tuple(deliveries),
    )


def verify_ledger(session: Session) -> list[LedgerProblem]:
    """Every broken invariant: spent = Σ settled, reserved = Σ open holds, spent ≤ cap, of
    every tenant's and every key's budget row, and per job: a settled job has exactly its
    release, and nothing settles without a hold."""
    problems: list[LedgerProblem] = []
    for budget_id, tenant_id, key, cap, spent, reserved, settled, holds in repo.broken_budgets(
        session
    ):
        subject = f"budget {budget_id} (tenant {tenant_id}, {key})"
        problems += _budget_problems("budget", subject, cap, spent, reserved, settled, holds)
    for row_id, key_id, key, cap, spent, reserved, settled, holds in key_repo.broken_key_budgets(
        session
    ):
        subject = f"key budget {row_id} (key {key_id}, {key})"
        problems += _budget_problems("key_budget", subject, cap, spent, reserved, settled, holds)
    for job_id, held, settled, released in repo.broken_jobs(session):
        if held is None:
            message = f"settled {settled} without a reservation"
        else:
            message = f"reserved {held}, settled {settled}, released {released} do not add up"
        problems.append(LedgerProblem("job", f"job {job_id}", message))
    return problems


def _budget_problems(
    kind: str,
    subject: str,
    cap: object,
    spent: object,
    reserved: object,
    settled: object,
    holds: object,
) -> list[LedgerProblem]:
    problems = []
    if spent != settled:
        problems.append(LedgerProblem(kind, subject, f"spent {spent} != sum of settled {settled}"))
    if reserved != holds:
        problems.append(LedgerProblem(kind, subject, f"reserved {reserved} != open holds {holds}"))
    if cap is not None and spent > cap:  # type: ignore[operator]
        problems.append(LedgerProblem(kind, subject, f"spent {spent} > cap {cap}"))
    return problems
