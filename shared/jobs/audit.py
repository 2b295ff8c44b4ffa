"""One job's full audit trail: plan, decision, score trajectory, every model call, the cost,
and its link to a shadow run (services.accounting.shadow)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from shared.db.models import Job
from shared.errors import NotFoundError
from shared.jobs import repository as repo
from shared.money import plain


def job_audit(session: Session, job_id: uuid.UUID | str) -> dict[str, Any]:
    job = session.get(Job, uuid.UUID(str(job_id)))
    if job is None:
        raise NotFoundError(f"job {job_id} not found", field="job_id")
    calls = repo.calls(session, job.id)
    shadow = repo.shadow_run(session, job.id)
    return {
        "job_id": str(job.id),
        "tenant_id": str(job.tenant_id),
        # The operator's view only (the tenant's audit schema leaves these out): the job this
        # shadow run measures, or this job's shadow run on the operator's account.
        "shadow_of": None if job.shadow_of is None else str(job.shadow_of),
        "shadow": None
        if shadow is None
        else {"job_id": str(shadow.id), "status": shadow.status, "cost": plain(shadow.cost)},
        "status": job.status,
        "policy": job.policy,
        "domain": job.domain,
        "levels": job.levels,
        "fixed_level": job.fixed_level,
        "prompt_version": job.prompt_version,
        "question": job.question,
        "truncation_level": job.truncation_level,
        "truncation_tokens": job.truncation_tokens,
        "insight_tokens_written": job.insight_tokens,
        "insights_finished": job.insights_finished,
        "termination_reason": job.termination_reason,
        "classifier_version": job.classifier_version,
        "thresholds": job.thresholds,
        "scores": job.scores,
        "answer": job.answer,
        "error": {"code": job.error_code, "message": job.error_message} if job.error_code else None,
        "reserved": plain(job.reserved_amount),
        "cost": plain(job.cost),
        "calls": [
            {
                "step": c.step,
                "role": c.role,
                "model": c.model,
                "engine": c.engine,
                "level": c.level,
                "prompt_tokens": c.prompt_tokens,
                "generated_tokens": c.generated_tokens,
                "latency_ms": round(c.latency_ms, 3),
                "flops": plain(c.flops_prompt + c.flops_generated),
                "cost": plain(c.cost),
                "finish_reason": c.finish_reason,
            }
            for c in calls
        ],
        "events": [
            {
                "at": e.created_at.isoformat(),
                "kind": e.kind,
                "status": e.status,
                "level": e.level,
                "data": e.data,
            }
            for e in repo.events(session, job.id)
        ],
    }


def score_line(entry: dict[str, Any]) -> str:
    """One checkpoint of an audit's ``scores`` in words: its level, the score, the threshold it
    met or missed (or the rule that decided) and the decision."""
    against = (
        f"threshold {entry['threshold']:.4f}"
        if entry.get("threshold") is not None
        else f"rule {entry.get('rule')}"
    )
    return f"level {entry['level']}: score {entry['score']:.4f} {against} -> {entry['decision']}"
