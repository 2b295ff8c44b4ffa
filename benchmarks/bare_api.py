"""The least an admission can cost on this stack: the floor ``api_submit_bench.py`` sets the
API's submission against.

A FastAPI app served by uvicorn exactly as ``tandem api serve`` serves the API (same server,
same HTTP parser and event loop, same worker count), whose ``POST /v1/jobs`` does only the I/O
an admission cannot do without: it validates the JSON body with a pydantic model, runs one
prepared ``INSERT … RETURNING`` on an asyncpg pool in autocommit, pushes a message of a task's
size with one ``LPUSH`` and answers 202 with a small JSON body. No authentication, budget, plan,
metrics or middleware. Its ``/healthz`` answers as the API's does. The ratio of the two,
measured in the same run, is how many ``/healthz`` requests the I/O of one submission costs
before any of the API's own work.

    python -m uvicorn benchmarks.bare_api:create_app --factory --workers 2 --port 8001
    (TANDEM_DATABASE_URL and TANDEM_REDIS_URL name the servers)
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel

from services.api.db import asyncpg_dsn

CREATE_TABLE = (
    "CREATE TABLE IF NOT EXISTS bench_bare_jobs (id uuid PRIMARY KEY, question text NOT NULL, "
    "domain text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
)
INSERT = (
    "INSERT INTO bench_bare_jobs (id, question, domain) VALUES ($1, $2, $3) RETURNING created_at"
)
QUEUE = "bench-bare"
# About the size of a job's first task message (shared.jobs.messages.task_message).
PADDING = "x" * 1200


class Submission(BaseModel):
    question: str
    domain: str


async def _no_reset(connection: Any) -> None:
    pass


def create_app() -> FastAPI:
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state["pool"] = await asyncpg.create_pool(
            asyncpg_dsn(os.environ["TANDEM_DATABASE_URL"]),
            min_size=1,
            max_size=10,
            reset=_no_reset,  # as the API's pool: no reset statement per checkout
        )
        state["redis"] = aioredis.Redis.from_url(os.environ["TANDEM_REDIS_URL"])
        yield
        await state["pool"].close()
        await state["redis"].aclose()

    app = FastAPI(lifespan=lifespan, telemetry={"tracing": False, "metrics": False, "logs": False})

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/jobs", status_code=202)
    async def submit(request: Request, body: Submission) -> Response:
        job_id = uuid.uuid4()
        async with state["pool"].acquire() as connection:
            created = await connection.fetchval(INSERT, job_id, body.question, body.domain)
        message = json.dumps({"id": str(job_id), "task": "coordinate", "padding": PADDING})
        await state["redis"].lpush(QUEUE, message)
        accepted = {"id": str(job_id), "status": "queued", "created_at": created.isoformat()}
        return Response(json.dumps(accepted), status_code=202, media_type="application/json")

    return app
