"""Tenant-facing job routes: thin wrappers around :mod:`.admission` and :mod:`.service`.

No route opens a session: each calls one plain function that owns its unit of work, in one
thread-pool hop; submission's runs on the event loop (:mod:`.admission`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from services.api.deps import SettingsDep, TenantDep, current_caller
from services.api.jobs import admission, service
from services.api.jobs.follow import LiveAnswer, event_stream
from services.api.jobs.schemas import (
    CancelOut,
    JobAccepted,
    JobAudit,
    JobCreate,
    JobOut,
    JobPage,
)
from services.api.schemas import ErrorOut
from shared.db.models import JobStatus
from shared.errors import ValidationFailed

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (401, 404, 422, 429)
}
router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=ERRORS)


IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": 255},
    "description": "Retries with the same key and body return the same job; the same key with "
    "another body answers 409.",
}


@router.post(
    "",
    status_code=202,
    response_model=JobAccepted,
    responses={402: {"model": ErrorOut}, 409: {"model": ErrorOut}, 413: {"model": ErrorOut}},
    openapi_extra={"parameters": [IDEMPOTENCY_KEY]},
)
async def submit(request: Request, body: JobCreate) -> Response:
    """Admit a job: reserve its worst case against the budget and queue it.

    The tenant and the Idempotency-Key header are read here rather than declared as a
    dependency and a parameter: on the API's busiest route, FastAPI's resolution of each
    costs more CPU than reading them.
    """
    caller = await current_caller(request)
    idempotency_key = request.headers.get("idempotency-key")
    key = admission.check_idempotency_key(idempotency_key)
    submission = await admission.submit_job(
        request.app.state.settings,
        caller.tenant,
        body,
        profiles=request.app.state.profiles(),
        publish=request.app.state.publisher,
        idempotency_key=key,
        caller=caller,
    )
    job = submission.job
    accepted = JobAccepted(
        id=job.id,
        status=JobStatus(job.status),
        url=service.job_url(job.id),
        reserved=job.reserved_amount,
        levels=list(job.levels),
        max_answer_tokens=job.max_answer_tokens,
        shrunk=submission.shrunk,
    )
    return Response(
        accepted.model_dump_json(),
        status_code=202,
        media_type="application/json",
        headers={"Location": accepted.url, "Idempotent-Replayed": str(not submission.created)},
    )


@router.get("", response_model=JobPage)
async def list_jobs(
    tenant: TenantDep,
    settings: SettingsDep,
    status: Annotated[list[JobStatus] | None, Query(description="Only these statuses.")] = None,
    created_after: Annotated[datetime | None, Query()] = None,
    created_before: Annotated[datetime | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> JobPage:
    """The caller's jobs, newest first; pass ``next_cursor`` back as ``cursor``."""
    limit = limit or settings.default_page_size
    if limit > settings.max_page_size:
        raise ValidationFailed(f"limit is at most {settings.max_page_size}", field="limit")
    for name, when in (("created_after", created_after), ("created_before", created_before)):
        if when is not None and when.tzinfo is None:
            raise ValidationFailed(f"{name} needs a timezone (e.g. Z)", field=name)
    data, next_cursor = await run_in_threadpool(
        service.list_jobs,
        settings,
        tenant,
        statuses=status or [],
        created_after=created_after,
        created_before=created_before,
        cursor=cursor,
        limit=limit,
    )
    return JobPage(data=data, next_cursor=next_cursor)


@router.get("/{job_id}", response_model=JobOut)
async def get_job(job_id: uuid.UUID, tenant: TenantDep, settings: SettingsDep) -> JobOut:
    """Status, answer, insights, truncation, usage per model and role, cost and timings."""
    return await run_in_threadpool(service.get_job, settings, tenant, job_id)


@router.get("/{job_id}/audit", response_model=JobAudit)
async def audit(job_id: uuid.UUID, tenant: TenantDep, settings: SettingsDep) -> JobAudit:
    """Truncation point and reason, scores, every model call (tokens, latency, FLOPs, cost)
    and every event, in order."""
    return await run_in_threadpool(service.job_audit, settings, tenant, job_id)


@router.post("/{job_id}/cancel", response_model=CancelOut)
async def cancel(job_id: uuid.UUID, tenant: TenantDep, settings: SettingsDep) -> CancelOut:
    """Stop the job at its next step boundary; a job not started yet is cancelled now."""
    job = await run_in_threadpool(service.cancel_job, settings, tenant, job_id)
    return CancelOut(id=job.id, status=JobStatus(job.status), cancel_requested=job.cancel_requested)


@router.get(
    "/{job_id}/events",
    responses={200: {"content": {"text/event-stream": {}}, "description": "SSE stream"}},
)
async def events(
    request: Request,
    job_id: uuid.UUID,
    tenant: TenantDep,
    settings: SettingsDep,
    last_event_id: Annotated[str | None, Header(description="Resume after this event.")] = None,
) -> EventSourceResponse:
    """Server-Sent Events of the job's progress, ending with a ``done`` event; a job submitted
    with ``stream_answer`` also sends the executor's text as it is generated, in
    ``answer_delta`` events (``{"text": ...}``) before its ``answer`` event."""
    after = service.resume_after(last_event_id)
    job = await run_in_threadpool(service.check_owned, settings, tenant, job_id)
    # The live text from its start only: a resumed stream picks up at the next event.
    live = LiveAnswer(request.app.state.aredis, job_id) if job.stream_answer and not after else None
    stream = event_stream(settings, job_id, after, request.is_disconnected, live)
    return EventSourceResponse(stream, ping=15)
