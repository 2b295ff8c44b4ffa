"""A queued job of a fresh tenant, for the job-record tests."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from shared.db.models import Job, JobStatus, Policy
from shared.tenants.service import create_tenant


def queued_job(
    session: Session,
    policy: Policy = Policy.TANDEM,
    fixed: int | None = None,
    *,
    flush: bool = True,
) -> Job:
    """A queued job added to ``session`` (flushed, unless ``flush`` is False)."""
    tenant = create_tenant(session, f"jobs-{uuid.uuid4().hex[:8]}")
    job = Job(
        id=uuid.uuid4(),
        tenant_id=tenant.id,
        domain="math",
        policy=policy.value,
        question="What is 1 + 1?",
        levels=[0, 100],
        fixed_level=fixed,
        max_answer_tokens=64,
        prompt_version="v1",
        status=JobStatus.QUEUED.value,
    )
    session.add(job)
    if flush:
        session.flush()
    return job
