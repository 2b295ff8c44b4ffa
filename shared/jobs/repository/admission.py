"""Admission in one statement: the budget rows locked once, the job, its hold and its
``submitted`` event inserted (alone, or a lane's batch together)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from shared.db.models import TERMINAL_STATUSES


@dataclass(frozen=True)
class Candidate:
    """One plan admission may reserve: the cheapest that fits is not chosen, the first is."""

    cost: Decimal
    levels: list[int]
    max_answer_tokens: int


@dataclass(frozen=True)
class Admitted:
    budget_id: uuid.UUID
    choice: int  # index into the candidates
    reserved: Decimal
    created_at: datetime
    key_budget_id: uuid.UUID | None = None  # the submitting key's row the hold is also in


async def admit(
    connection: Any,
    *,
    job: dict[str, Any],
    period_key: str,
    candidates: list[Candidate],
    ledger_id: uuid.UUID,
    max_active: int | None = None,
    key_period: str | None = None,
) -> Admitted | AtLimit | None:
    """Admission in ONE statement on an asyncpg ``connection``: reserve the first candidate that
    fits the tenant's budget row (``spent + reserved + cost <= cap``), insert the job with that
    plan, its ledger hold and its ``submitted`` event; None (and nothing written) when no
    candidate fits.

    The budget row is locked by this statement only: run outside a transaction it commits by
    itself, and the fit is re-checked on the row's latest version when a concurrent admission
    held it, so no interleaving can push spent + reserved over the cap. ``job`` holds the Job's
    attributes (as its constructor takes them) except the plan, budget and reservation, which
    come from the chosen candidate; its ``prices`` (:func:`shared.prices.snapshot`) are what
    the job's calls will be charged at.

    A job with an ``api_key_id`` is held in its key's budget row of ``key_period`` too, in the
    same statement: the candidate must also fit the key's cap (when it has one), the key's row
    is locked before the tenant's (the order settlement locks them in), and None comes back as
    well when the key's row does not exist yet.

    With ``max_active`` (the tenant's concurrent-jobs limit) it is three statements in one
    transaction: lock the budget rows, count the tenant's unfinished jobs (a statement of its
    own, so it sees every admission that committed while this one waited for the lock), then
    admit unless the count is at the limit (:class:`AtLimit`, nothing written).
    """
    params = [job["tenant_id"], period_key, job["id"], ledger_id, *_job_values(job)]
    for candidate in candidates:
        params += [candidate.cost, json.dumps(candidate.levels), candidate.max_answer_tokens]
    key_id = job.get("api_key_id")
    params += [key_id, key_period]  # after the candidates: see _admit_statement
    statement = _admit_statement(len(candidates))
    if max_active is None:
        row = await connection.fetchrow(statement, *params)
    else:
        async with connection.transaction():
            locked = await connection.fetchval(
                _LOCK_BUDGETS, job["tenant_id"], period_key, key_id, key_period
            )
            if locked is None:
                return None  # a budget row is missing: nothing was locked or counted
            active = await connection.fetchval(_ACTIVE_JOBS, job["tenant_id"], _FINISHED)
            if active >= max_active:
                return AtLimit(active)
            row = await connection.fetchrow(statement, *params)
    if row is None:
        return None
    return Admitted(
        budget_id=row[0],
        choice=int(row[1]),
        reserved=row[2],
        created_at=row[3],
        key_budget_id=row[4],
    )


@dataclass(frozen=True)
class Together:
    """One job of a batch admitted together: its attributes as :func:`admit` takes them, the
    one plan it may reserve, and the id of its ledger hold."""

    job: dict[str, Any]
    candidate: Candidate
    ledger_id: uuid.UUID


async def admit_together(
    connection: Any,
    batch: Sequence[Together],
    *,
    tenant_id: uuid.UUID,
    period_key: str,
    key_id: uuid.UUID | None = None,
    key_period: str | None = None,
) -> list[Admitted] | None:
    """Admission of several of one tenant's jobs, submitted with one key (or none), in ONE
    statement on an asyncpg ``connection``: all of them at their one plan, or none.

    The budget rows are locked once for the whole batch and its total is reserved only if it
    fits (``spent + reserved + total <= cap``, the key's cap too), so each job's plan fits
    after the ones before it, as if each had been admitted alone in turn; then every job, hold
    and ``submitted`` event is inserted. None, with nothing written, when the total does not
    fit or a budget row does not exist: the caller admits each job alone (:func:`admit`), which
    may still fit a smaller plan or tell why not. A job whose idempotency key was used fails
    the whole statement (``UniqueViolationError``), again with nothing written.

    Jobs whose tenant limits how many may run at once are not admitted this way: that count
    is :func:`admit`'s, under the rows' lock."""
    if any(i.job["tenant_id"] != tenant_id or i.job.get("api_key_id") != key_id for i in batch):
        raise ValueError("a batch admits one tenant's jobs of one key")
    values = [
        (
            item.job["id"],
            item.ledger_id,
            *_job_values(item.job),
            item.candidate.cost,
            json.dumps(item.candidate.levels),
            item.candidate.max_answer_tokens,
        )
        for item in batch
    ]
    columns = [list(column) for column in zip(*values, strict=True)]
    rows = await connection.fetch(
        _ADMIT_TOGETHER, tenant_id, period_key, key_id, key_period, *columns
    )
    if not rows:
        return None
    created = {
        job_id: (budget_id, at, key_budget_id) for budget_id, job_id, at, key_budget_id in rows
    }
    admitted = []
    for item in batch:
        budget_id, at, key_budget_id = created[item.job["id"]]
        admitted.append(Admitted(budget_id, 0, item.candidate.cost, at, key_budget_id))
    return admitted


# What both admission statements share: the key's row, locked before the tenant's (the
# order settlement locks them in); the hold it takes as the tenant's did; the job row's columns.
_KEY_ROW = """kb AS (
    SELECT k.id, k.cap, k.spent, k.reserved FROM key_budgets AS k
    WHERE k.api_key_id = {key_id}::uuid AND k.period_key = {key_period}::text
    FOR UPDATE
),"""
_KEY_HELD = """key_held AS (
    UPDATE key_budgets AS k
    SET reserved = k.reserved + h.cost, updated_at = now()
    FROM held AS h, kb
    WHERE k.id = kb.id
),"""
# A hold of ``{cost}`` fits the tenant's row ``b`` and the key's row (when there is one).
_FITS = """b.spent + b.reserved + {cost} <= b.cap
      AND NOT EXISTS (SELECT 1 FROM kb WHERE kb.spent + kb.reserved + {cost} > kb.cap)"""
_JOB_COLUMNS = (
    "id, tenant_id, status, domain, policy, question, metadata, webhook_url, idempotency_key, "
    "request_hash, levels, fixed_level, max_answer_tokens, prompt_version, budget_id, max_cost, "
    "reserved_amount, trace_id, prices, api_key_id, key_budget_id, stream_answer"
)
# Each job's values, one array per column, in this order; every array is cast, since asyncpg
# sends what the server infers. JSON travels as text and is cast per row.
_TOGETHER_COLUMNS = (
    ("id", "uuid"),
    ("ledger_id", "uuid"),
    ("status", "text"),
    ("domain", "text"),
    ("policy", "text"),
    ("question", "text"),
    ("metadata", "text"),
    ("webhook_url", "text"),
    ("idempotency_key", "text"),
    ("request_hash", "text"),
    ("fixed_level", "integer"),
    ("prompt_version", "text"),
    ("max_cost", "numeric"),
    ("trace_id", "text"),
    ("prices", "text"),
    ("stream_answer", "boolean"),
    ("cost", "numeric"),
    ("levels", "text"),
    ("max_answer_tokens", "integer"),
)
_ADMIT_TOGETHER = """
WITH batch AS (
    SELECT * FROM unnest({arrays}) AS b({names})
),
total AS (SELECT sum(cost) AS cost FROM batch),
{key_row}
held AS (
    UPDATE budgets AS b
    SET reserved = b.reserved + t.cost, updated_at = now()
    FROM total AS t
    WHERE b.tenant_id = $1::uuid AND b.period_key = $2::text
      AND ($3::uuid IS NULL OR EXISTS (SELECT 1 FROM kb))
      AND {fits}
    RETURNING b.id AS budget_id, t.cost
),
{key_held}
job AS (
    INSERT INTO jobs ({job_columns})
    SELECT b.id, $1::uuid, b.status, b.domain, b.policy, b.question, b.metadata::jsonb,
           b.webhook_url, b.idempotency_key, b.request_hash, b.levels::jsonb, b.fixed_level,
           b.max_answer_tokens, b.prompt_version, h.budget_id, b.max_cost, b.cost, b.trace_id,
           b.prices::jsonb, $3::uuid, (SELECT kb.id FROM kb), b.stream_answer
    FROM batch AS b CROSS JOIN held AS h
    RETURNING id, created_at
),
hold AS (
    INSERT INTO ledger_entries (id, tenant_id, budget_id, job_id, kind, amount)
    SELECT b.ledger_id, $1::uuid, h.budget_id, b.id, 'reserve', b.cost
    FROM batch AS b CROSS JOIN held AS h
),
event AS (
    INSERT INTO job_events (job_id, kind, status, data)
    SELECT b.id, 'submitted', b.status,
           jsonb_build_object('reserved', b.cost::text, 'levels', b.levels::jsonb,
                              'max_answer_tokens', b.max_answer_tokens)
    FROM batch AS b CROSS JOIN held AS h
)
SELECT h.budget_id, j.id, j.created_at, (SELECT kb.id FROM kb)
FROM held AS h CROSS JOIN job AS j
""".format(  # noqa: S608 - column names and casts, never input
    arrays=", ".join(f"${i + 5}::{kind}[]" for i, (_name, kind) in enumerate(_TOGETHER_COLUMNS)),
    names=", ".join(name for name, _kind in _TOGETHER_COLUMNS),
    key_row=_KEY_ROW.format(key_id="$3", key_period="$4"),
    fits=_FITS.format(cost="t.cost"),
    key_held=_KEY_HELD,
    job_columns=_JOB_COLUMNS,
)


def _job_values(job: dict[str, Any]) -> tuple[Any, ...]:
    """The job's own columns as both admission statements bind them, from ``status`` to
    ``stream_answer`` (JSON as text)."""
    return (
        job["status"],
        job["domain"],
        job["policy"],
        job["question"],
        json.dumps(job["job_metadata"]),
        job["webhook_url"],
        job["idempotency_key"],
        job["request_hash"],
        job["fixed_level"],
        job["prompt_version"],
        job["max_cost"],
        job["trace_id"],
        None if job.get("prices") is None else json.dumps(job["prices"]),
        bool(job.get("stream_answer", False)),
    )


@dataclass(frozen=True)
class AtLimit:
    """Admission refused: the tenant already has ``active`` unfinished jobs."""

    active: int


_FINISHED = sorted(status.value for status in TERMINAL_STATUSES)
# The key's row first, as in the admission statement; NULL when either row is missing.
_LOCK_BUDGETS = """
WITH kb AS (
    SELECT 1 FROM key_budgets WHERE api_key_id = $3::uuid AND period_key = $4::text FOR UPDATE
)
SELECT 1 FROM budgets
WHERE tenant_id = $1 AND period_key = $2 AND ($3::uuid IS NULL OR EXISTS (SELECT 1 FROM kb))
FOR UPDATE
"""
_ACTIVE_JOBS = "SELECT count(*) FROM jobs WHERE tenant_id = $1 AND status <> ALL($2::text[])"
_FIXED_PARAMS = 18  # $1 .. $18 above; each candidate adds three


@lru_cache(maxsize=32)
def _admit_statement(candidates: int) -> str:
    """The admission statement for ``candidates`` plans, built once per count (asyncpg then
    prepares it once per connection). Every parameter is cast: asyncpg sends what the server
    infers, and a bare parameter in a SELECT list would be inferred as text."""
    rows = []
    for i in range(candidates):
        n = _FIXED_PARAMS + 3 * i
        rows.append(f"({i}, ${n + 1}::numeric, ${n + 2}::jsonb, ${n + 3}::integer)")
    # The key's id and period follow the candidates, so the job's own parameters keep their
    # numbers whatever the count.
    key = _FIXED_PARAMS + 3 * candidates
    key_id, key_period = f"${key + 1}", f"${key + 2}"
    return _ADMIT.format(
        candidates=", ".join(rows),
        key_id=key_id,
        key_row=_KEY_ROW.format(key_id=key_id, key_period=key_period),
        fits=_FITS.format(cost="f.cost"),
        key_held=_KEY_HELD,
        job_columns=_JOB_COLUMNS,
    )


_ADMIT = """
WITH candidate(ord, cost, levels, max_answer_tokens) AS (VALUES {candidates}),
{key_row}
held AS (
    UPDATE budgets AS b
    SET reserved = b.reserved + c.cost, updated_at = now()
    FROM candidate AS c
    WHERE b.tenant_id = $1::uuid AND b.period_key = $2::text
      AND ({key_id}::uuid IS NULL OR EXISTS (SELECT 1 FROM kb))
      AND c.ord = (SELECT min(f.ord) FROM candidate AS f WHERE {fits})
    RETURNING b.id AS budget_id, c.ord, c.cost, c.levels, c.max_answer_tokens
),
{key_held}
job AS (
    INSERT INTO jobs ({job_columns})
    SELECT $3::uuid, $1::uuid, $5::text, $6::text, $7::text, $8::text, $9::jsonb, $10::text,
           $11::text, $12::text, h.levels, $13::integer, h.max_answer_tokens, $14::text,
           h.budget_id, $15::numeric, h.cost, $16::text, $17::jsonb,
           {key_id}::uuid, (SELECT kb.id FROM kb), $18::boolean
    FROM held AS h
    RETURNING created_at
),
hold AS (
    INSERT INTO ledger_entries (id, tenant_id, budget_id, job_id, kind, amount)
    SELECT $4::uuid, $1::uuid, h.budget_id, $3::uuid, 'reserve', h.cost FROM held AS h
),
event AS (
    INSERT INTO job_events (job_id, kind, status, data)
    SELECT $3::uuid, 'submitted', $5::text,
           jsonb_build_object('reserved', h.cost::text, 'levels', h.levels,
                              'max_answer_tokens', h.max_answer_tokens)
    FROM held AS h
)
SELECT h.budget_id, h.ord, h.cost, j.created_at, (SELECT kb.id FROM kb)
FROM held AS h CROSS JOIN job AS j
"""
