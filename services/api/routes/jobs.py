"""Tenant-facing job routes: thin wrappers around :mod:`services.api.service`."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from services.api import repository as repo
from services.api import service
from services.api.deps import SettingsDep, TenantDep
from services.api.schemas import (
    CancelOut,
    ErrorOut,
    JobAccepted,
    JobAudit,
    JobCreate,
    JobOut,
    JobPage,
)
from services.api.settings import ApiSettings
from shared.db.models import JobStatus
from shared.db.session import unit_of_work
from shared.errors import NotFoundError, ValidationFailed

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (401, 404, 422, 429)
}
router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=ERRORS)


@router.post(
    "",
    status_code=202,
    response_model=JobAccepted,
    responses={402: {"model": ErrorOut}, 409: {"model": ErrorOut}, 413: {"model": ErrorOut}},
)
async def submit(
    request: Request,
    body: JobCreate,
    tenant: TenantDep,
    settings: SettingsDep,
    idempotency_key: Annotated[
        str | None, Header(description="Retries with the same key return the same job.")
    ] = None,
) -> JSONResponse:
    """Admit a job: reserve its worst case against the budget and queue it."""
    key = service.check_idempotency_key(idempotency_key)
    submission = await run_in_threadpool(
        service.submit_job,
        settings,
        tenant,
        body,
        profiles=request.app.state.profiles(),
        publish=request.app.state.publisher,
        idempotency_key=key,
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
    return JSONResponse(
        accepted.model_dump(mode="json"),
        status_code=202,
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


def _poll(
    settings: ApiSettings, job_id: uuid.UUID, after_id: int
) -> tuple[list[dict[str, Any]], str | None]:
    with unit_of_work(settings.database_url) as session:
        events = repo.events_after(session, job_id, after_id, 100)
        status = repo.job_status(session, job_id)
        return [
            {
                "id": e.id,
                "kind": e.kind,
                "status": e.status,
                "level": e.level,
                "data": e.data,
                "created_at": e.created_at.isoformat(),
            }
            for e in events
        ], status


def _owned(settings: ApiSettings, tenant_id: uuid.UUID, job_id: uuid.UUID) -> None:
    with unit_of_work(settings.database_url) as session:
        if repo.job_for_tenant(session, tenant_id, job_id) is None:
            raise NotFoundError(f"job {job_id} not found", field="id")


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
    """Server-Sent Events of the job's progress, ending with a ``done`` event."""
    await run_in_threadpool(_owned, settings, tenant.id, job_id)
    after = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0

    async def stream() -> AsyncIterator[dict[str, str]]:
        cursor = after
        while True:
            rows, status = await run_in_threadpool(_poll, settings, job_id, cursor)
            for row in rows:
                cursor = row["id"]
                yield {"id": str(row["id"]), "event": row["kind"], "data": json.dumps(row)}
            if not rows and (status is None or JobStatus(status).terminal):
                yield {"event": "done", "data": json.dumps({"status": status})}
                return
            if await request.is_disconnected():
                return
            if not rows:
                await asyncio.sleep(settings.poll_interval_s)

    return EventSourceResponse(stream(), ping=15)
