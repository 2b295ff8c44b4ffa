"""Shadow runs spawned by the settlement, as plain functions on real Postgres and the simulator
engines (the end-to-end run through real workers: tests/services/api/test_shadow_runs_e2e.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from pydantic import ValidationError
from sqlalchemy import select, update

from services.accounting import repository as accounting_repo
from services.accounting import service as accounting
from services.accounting.settings import AccountingSettings, get_accounting_settings
from services.accounting.shadow import sampled
from services.executor import service as executor
from shared.budgets import verify_ledger
from shared.db.models import (
    Budget,
    Domain,
    Job,
    LedgerEntry,
    Policy,
    Tenant,
    WebhookDelivery,
)
from shared.db.session import unit_of_work
from shared.jobs.audit import job_audit
from shared.jobs.flow import NextTask
from shared.tasks import TaskName
from tests.services.pipeline.support import history, job_row, make_tenant, submit

QUESTION = "What is 2 + 40?"


@pytest.fixture
def operator(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Every math tandem job measured, no code job, on an account of this test's own."""
    name = f"shadow-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("TANDEM_SHADOW_FRACTION", "1")
    monkeypatch.setenv("TANDEM_SHADOW_DOMAIN_FRACTIONS", '{"code": 0}')
    monkeypatch.setenv("TANDEM_SHADOW_TENANT", name)
    get_accounting_settings.cache_clear()
    yield name
    get_accounting_settings.cache_clear()  # the next reader sees the restored environment


def settling(
    tenant_id: uuid.UUID,
    *,
    policy: Policy = Policy.TANDEM,
    domain: Domain = Domain.MATH,
    webhook_url: str | None = None,
) -> uuid.UUID:
    """A job whose executor has answered: what the accounting task is sent for."""
    job_id = submit(
        None,
        tenant_id,
        QUESTION,
        policy=policy,
        domain=domain,
        webhook_url=webhook_url,
        start=False,
    )
    with unit_of_work() as session:
        session.execute(update(Job).where(Job.id == job_id).values(status="settling"))
    return job_id


def shadows_of(job_id: uuid.UUID) -> list[Job]:
    with unit_of_work() as session:
        found = list(session.scalars(select(Job).where(Job.shadow_of == job_id)))
        session.expunge_all()
    return found


def budget_of(tenant_id: uuid.UUID) -> tuple[Decimal, Decimal]:
    with unit_of_work() as session:
        row = session.execute(
            select(Budget.spent, Budget.reserved).where(Budget.tenant_id == tenant_id)
        ).one()
    return row.spent, row.reserved


def ledger(job_id: uuid.UUID) -> dict[str, tuple[Decimal, uuid.UUID]]:
    with unit_of_work() as session:
        rows = session.execute(
            select(LedgerEntry.kind, LedgerEntry.amount, LedgerEntry.tenant_id).where(
                LedgerEntry.job_id == job_id
            )
        ).all()
    return {kind: (amount, tenant) for kind, amount, tenant in rows}


def tenant_named(name: str) -> Tenant:
    with unit_of_work() as session:
        tenant = session.scalars(select(Tenant).where(Tenant.name == name)).one()
        session.expunge(tenant)
    return tenant


@pytest.mark.usefixtures("sim_env")
def test_a_succeeded_tandem_job_gets_one_shadow_run_on_the_operators_account(
    operator: str,
) -> None:
    tenant_id = make_tenant()
    job_id = settling(tenant_id, webhook_url="https://hooks.example.com/t")
    following = accounting.settle_job(job_id)

    (shadow,) = shadows_of(job_id)
    account = tenant_named(operator)
    assert not account.active  # no key authenticates as the operator's account
    deliveries = [t for t in following if t.name is TaskName.WEBHOOKS_DELIVER]
    assert len(deliveries) == 1  # the tenant's webhook, for its own job only
    assert NextTask(TaskName.EXECUTOR_EXECUTE, {"job_id": str(shadow.id)}) in following
    assert (shadow.tenant_id, shadow.policy, shadow.status) == (account.id, "llm_only", "queued")
    parent = job_row(job_id)
    assert (shadow.question, shadow.domain) == (parent.question, parent.domain)
    assert shadow.max_answer_tokens == parent.max_answer_tokens and shadow.webhook_url is None
    # The measured job's tenant and settled cost, copied for the savings report.
    assert (shadow.shadow_of_tenant_id, shadow.shadow_of_cost) == (tenant_id, parent.cost)
    assert shadow.rolled_up  # never in the roll-ups or the reports' job figures
    # The hold sits on the operator's budget; the tenant's holds nothing more.
    assert ledger(shadow.id) == {"reserve": (shadow.reserved_amount, account.id)}
    assert budget_of(account.id) == (Decimal(0), shadow.reserved_amount)
    assert budget_of(tenant_id) == (parent.cost, Decimal(0))
    assert history(shadow.id) == [("submitted", "queued", None)]
    assert accounting.settle_job(job_id) == []  # redelivered: no second shadow run
    assert len(shadows_of(job_id)) == 1

    # The shadow run goes the llm_only way and is settled on the operator's account only.
    executor.execute(shadow.id)
    assert accounting.settle_job(shadow.id) == []  # no webhook, no shadow of a shadow run
    settled = job_row(shadow.id)
    assert settled.status == "succeeded" and settled.cost > 0
    assert budget_of(account.id) == (settled.cost, Decimal(0))
    assert budget_of(tenant_id) == (parent.cost, Decimal(0))
    with unit_of_work() as session:
        assert (
            session.scalar(
                select(WebhookDelivery.job_id).where(WebhookDelivery.job_id == shadow.id)
            )
            is None
        )
        assert verify_ledger(session) == []
        audit = job_audit(session, job_id)
        shadow_audit = job_audit(session, shadow.id)
    assert audit["shadow"] == {
        "job_id": str(shadow.id),
        "status": "succeeded",
        "cost": format(settled.cost.normalize(), "f"),
    }
    assert audit["shadow_of"] is None
    assert shadow_audit["shadow_of"] == str(job_id) and shadow_audit["shadow"] is None


@pytest.mark.usefixtures("sim_env")
def test_jobs_outside_the_measured_share_spawn_nothing(operator: str) -> None:
    tenant_id = make_tenant()
    code = settling(tenant_id, domain=Domain.CODE)  # its domain's share is 0
    baseline = settling(tenant_id, policy=Policy.SLM_ONLY)  # not a tandem job
    failed = submit(None, tenant_id, QUESTION, start=False)
    with unit_of_work() as session:
        session.execute(update(Job).where(Job.id == failed).values(status="failed"))
    for job_id in (code, baseline, failed):
        assert accounting.settle_job(job_id) == []
        assert shadows_of(job_id) == []
        assert ledger(job_id)["settle"][1] == tenant_id  # settled as ever


@pytest.mark.usefixtures("sim_env")
def test_a_shadow_run_the_operators_budget_cannot_hold_is_skipped(operator: str) -> None:
    with unit_of_work() as session:
        accounting_repo.operator_account(session, operator, Decimal(0))
    job_id = settling(make_tenant())
    assert accounting.settle_job(job_id) == []
    assert shadows_of(job_id) == []
    assert job_row(job_id).status == "succeeded"


@pytest.mark.usefixtures("sim_env")
def test_an_active_tenant_is_never_charged_for_shadow_runs(operator: str) -> None:
    with unit_of_work() as session:
        session.add(
            Tenant(name=operator, budget_cap=Decimal(1000), webhook_secret="s", active=True)
        )
    job_id = settling(make_tenant())
    assert accounting.settle_job(job_id) == []
    assert shadows_of(job_id) == []


def test_the_sample_follows_the_share_and_never_changes() -> None:
    ids = [Job(id=uuid.UUID(int=i * 7919)) for i in range(2000)]
    assert not any(sampled(job, 0.0) for job in ids)
    assert all(sampled(job, 1.0) for job in ids)
    picked = [job for job in ids if sampled(job, 0.05)]
    assert 60 <= len(picked) <= 140  # 100 expected; the binomial's sd is under 10
    assert picked == [job for job in ids if sampled(job, 0.05)]
    assert all(sampled(job, 0.2) for job in picked)  # a larger share keeps the smaller's


def test_shares_are_checked_and_overridden_per_domain() -> None:
    settings = AccountingSettings(shadow_fraction=0.05, shadow_domain_fractions={"code": 0.5})
    assert (settings.shadow_share("code"), settings.shadow_share("math")) == (0.5, 0.05)
    with pytest.raises(ValidationError):
        AccountingSettings(shadow_fraction=1.5)
    with pytest.raises(ValidationError):
        AccountingSettings(shadow_domain_fractions={"code": -0.1})
    with pytest.raises(ValidationError):
        AccountingSettings(shadow_domain_fractions={"poetry": 0.1})
