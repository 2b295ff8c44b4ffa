"""SQL of the pipeline's steps: job locks, step records (model calls), roll-ups, stuck jobs."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.db.models import (
    TERMINAL_STATUSES,
    Job,
    JobEvent,
    JobStatus,
    LedgerEntry,
    LedgerKind,
    ModelCall,
    ScoreHourly,
    UsageHourly,
)

SCORE_BUCKETS = 10  # the score roll-up's histogram: tenths of [0, 1]


def lock_job(session: Session, job_id: uuid.UUID) -> Job | None:
    """The job row, locked until the end of the transaction (steps of one job serialize)."""
    return session.scalars(
        select(Job)
        .where(Job.id == job_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


def get_call(session: Session, job_id: uuid.UUID, step: str) -> ModelCall | None:
    return session.scalars(
        select(ModelCall).where(ModelCall.job_id == job_id, ModelCall.step == step)
    ).first()


def insert_call(session: Session, values: dict[str, Any]) -> bool:
    """Record a step's call once; False when (job_id, step) is already there."""
    inserted = session.execute(
        insert(ModelCall)
        .values(id=uuid.uuid4(), **values)
        .on_conflict_do_nothing(index_elements=["job_id", "step"])
        .returning(ModelCall.id)
    ).first()
    return inserted is not None


def calls(session: Session, job_id: uuid.UUID) -> list[ModelCall]:
    return list(
        session.scalars(
            select(ModelCall).where(ModelCall.job_id == job_id).order_by(ModelCall.created_at)
        )
    )


def spent(session: Session, job_id: uuid.UUID) -> Decimal:
    total = session.scalar(
        select(func.coalesce(func.sum(ModelCall.cost), 0)).where(ModelCall.job_id == job_id)
    )
    return Decimal(total or 0)


def events(session: Session, job_id: uuid.UUID) -> list[JobEvent]:
    return list(
        session.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id))
    )


def has_status_event(
    session: Session, job_id: uuid.UUID, status: JobStatus, level: int | None
) -> bool:
    """Whether the job already entered ``status`` at ``level`` (a redelivered step's start)."""
    query = select(JobEvent.id).where(
        JobEvent.job_id == job_id, JobEvent.kind == "status", JobEvent.status == status.value
    )
    if level is not None:
        query = query.where(JobEvent.level == level)
    return session.scalar(query.limit(1)) is not None


def is_settled(session: Session, job_id: uuid.UUID) -> bool:
    return (
        session.scalar(
            select(LedgerEntry.id).where(
                LedgerEntry.job_id == job_id, LedgerEntry.kind == LedgerKind.SETTLE.value
            )
        )
        is not None
    )


def add_usage(session: Session, job: Job, call: ModelCall) -> None:
    """Add one call to its hour's roll-up row (upsert; the caller runs it once per settlement)."""
    flops = call.flops_prompt + call.flops_generated
    stmt = insert(UsageHourly).values(
        tenant_id=job.tenant_id,
        hour=call.created_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0),
        model=call.model,
        role=call.role,
        domain=job.domain,
        policy=job.policy,
        calls=1,
        prompt_tokens=call.prompt_tokens,
        generated_tokens=call.generated_tokens,
        flops=flops,
        cost=call.cost,
    )
    excluded = stmt.excluded
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id", "hour", "model", "role", "domain", "policy"],
            set_={
                "calls": UsageHourly.calls + 1,
                "prompt_tokens": UsageHourly.prompt_tokens + excluded.prompt_tokens,
                "generated_tokens": UsageHourly.generated_tokens + excluded.generated_tokens,
                "flops": UsageHourly.flops + excluded.flops,
                "cost": UsageHourly.cost + excluded.cost,
            },
        )
    )


def score_bucket(score: float) -> int:
    """The tenth of [0, 1] a classifier score falls in; 1.0 joins the last."""
    return min(max(int(score * SCORE_BUCKETS), 0), SCORE_BUCKETS - 1)


def add_scores(session: Session, job: Job) -> None:
    """Add the job's checkpoint scores to the histogram of its creation hour (upsert; the
    caller runs it once per settlement, like :func:`add_usage`)."""
    counts = Counter(
        score_bucket(float(entry["score"]))
        for entry in job.scores
        if isinstance(entry.get("score"), int | float)
    )
    if not counts:
        return
    hour = job.created_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    stmt = insert(ScoreHourly).values(
        [
            {
                "tenant_id": job.tenant_id,
                "hour": hour,
                "domain": job.domain,
                "policy": job.policy,
                "bucket": bucket,
                "checkpoints": n,
            }
            for bucket, n in sorted(counts.items())
        ]
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id", "hour", "domain", "policy", "bucket"],
            set_={"checkpoints": ScoreHourly.checkpoints + stmt.excluded.checkpoints},
        )
    )


def stale_jobs(session: Session, before: datetime, limit: int = 100) -> list[uuid.UUID]:
    """Live jobs untouched since ``before`` (their worker died or their message was lost)."""
    live = [s.value for s in JobStatus if s not in TERMINAL_STATUSES]
    return list(
        session.scalars(
            select(Job.id)
            .where(Job.status.in_(live), Job.updated_at < before)
            .order_by(Job.updated_at)
            .limit(limit)
        )
    )


def unsettled_finished_jobs(session: Session, limit: int = 100) -> list[uuid.UUID]:
    """Failed or cancelled jobs holding a reservation with no settle entry yet."""
    settled = select(LedgerEntry.job_id).where(LedgerEntry.kind == LedgerKind.SETTLE.value)
    return list(
        session.scalars(
            select(Job.id)
            .where(
                Job.status.in_([JobStatus.FAILED.value, JobStatus.CANCELLED.value]),
                Job.budget_id.is_not(None),
                Job.id.not_in(settled),
            )
            .limit(limit)
        )
    )
