"""Shadow runs: a share of the succeeded tandem jobs answered again by the coordinator alone.

The savings report needs what the coordinator alone (``llm_only``) would have cost on the
tenants' own questions. Without tenants submitting llm_only jobs themselves, the only honest
measurement is to run it: a *shadow run* is an llm_only job on the parent's question, domain,
answer budget, prompt version and admitted prices, linked by ``jobs.shadow_of``.

It is spawned here, in the parent's settlement transaction, not at admission: admission stays
one statement and one LPUSH, only succeeded jobs are measured (a pair with a failed half says
nothing about savings), and the settlement is fresh exactly once, so a redelivered settle task
spawns nothing twice (the unique ``jobs.shadow_of`` makes it certain). Its first task is
published with the settlement's other tasks after the commit; the sweeper recovers a lost one
like any job's.

A shadow run belongs to the operator's account (:func:`repository.operator_account`), so it
is reserved and settled against that account's budget, never the tenant's: the tenant's cap,
concurrency and job list never see it, it has no webhook, and the ledger's invariants hold for
both budgets unchanged. It is born ``rolled_up``: the roll-ups and the reports' job figures
leave it out. It carries its job's tenant and settled cost (both final by now), so the savings
report reads each pair from the shadow run's index entry alone.
"""

from __future__ import annotations

import hashlib
import logging

from sqlalchemy.orm import Session

from services.accounting import repository as repo
from services.accounting.settings import AccountingSettings
from shared.budgets import BudgetExceeded, record_reserve, reserve
from shared.costs import Plan, worst_case_cost
from shared.db.models import Domain, Job, JobStatus, Policy
from shared.jobs import repository as jobs_repo
from shared.jobs.states import add_event
from shared.money import plain
from shared.prices import configured_profiles, job_profiles
from shared.prompts import template_overhead_tokens

log = logging.getLogger(__name__)

SHADOW_LEVELS = [0]  # llm_only writes no insights


def sampled(job: Job, share: float) -> bool:
    """Whether ``job`` is in the ``share`` measured: a hash of its id, so the choice is the
    same however often it is asked and independent of anything the tenant chose."""
    digest = hashlib.sha256(job.id.bytes).digest()
    return int.from_bytes(digest[:8], "big") < share * 2**64


def wanted(job: Job, settings: AccountingSettings) -> bool:
    """A succeeded tandem job a tenant paid for (not an internal run), in its domain's share."""
    return (
        job.budget_id is not None
        and job.policy == Policy.TANDEM.value
        and job.status == JobStatus.SUCCEEDED.value
        and sampled(job, settings.shadow_share(job.domain))
    )


def spawn(session: Session, parent: Job, settings: AccountingSettings) -> Job | None:
    """Insert ``parent``'s shadow run, its hold on the operator's account and its
    ``submitted`` event; None when the account's budget cannot hold it (the run is skipped,
    the parent's settlement goes on)."""
    operator = repo.operator_account(session, settings.shadow_tenant, settings.shadow_budget_cap)
    if operator.active:
        log.error(
            "shadow runs off: %r is an active tenant; name the operator's account with "
            "TANDEM_SHADOW_TENANT",
            settings.shadow_tenant,
        )
        return None
    prompt = jobs_repo.prompt_of(session, parent.id)
    plan = Plan(Policy.LLM_ONLY, tuple(SHADOW_LEVELS), parent.max_answer_tokens)
    profiles = job_profiles(configured_profiles(), prompt.prices)
    overhead = template_overhead_tokens(Domain(parent.domain))
    amount = worst_case_cost(plan, profiles, prompt.question, overhead)
    try:
        reservation = reserve(session, operator, amount)
    except BudgetExceeded as exc:
        log.warning("shadow run of job %s skipped: %s", parent.id, exc)
        return None
    shadow = Job(
        tenant_id=operator.id,
        status=JobStatus.QUEUED.value,
        domain=parent.domain,
        policy=Policy.LLM_ONLY.value,
        question=prompt.question,
        levels=SHADOW_LEVELS,
        max_answer_tokens=parent.max_answer_tokens,
        prompt_version=prompt.prompt_version,
        prices=prompt.prices,
        budget_id=reservation.budget_id,
        reserved_amount=reservation.amount,
        shadow_of=parent.id,
        shadow_of_tenant_id=parent.tenant_id,
        shadow_of_cost=parent.cost,  # settled just before, in this transaction
        rolled_up=True,  # never in the roll-ups: the operator's measurement, not traffic
    )
    session.add(shadow)
    session.flush()
    record_reserve(session, operator.id, shadow.id, reservation)
    add_event(
        session,
        shadow,
        "submitted",
        reserved=plain(reservation.amount),
        levels=SHADOW_LEVELS,
        max_answer_tokens=parent.max_answer_tokens,
        shadow_of=str(parent.id),
    )
    return shadow
