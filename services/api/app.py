"""The FastAPI application factory (``tandem api serve`` runs ``create_app``).

One package per domain (jobs, chat, admin, reports), each with its routes, service, schemas and
(where it has SQL of its own) repository; ops (probes, metrics) and the dashboard beside them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import redis
import redis.asyncio as aioredis
from celery import Celery
from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from services.api.admin import routes as admin
from services.api.alerts import routes as alerts
from services.api.chat import routes as chat
from services.api.dashboard import routes as dashboard
from services.api.db import async_database
from services.api.errors import install_error_handlers
from services.api.jobs import routes as jobs
from services.api.jobs.publish import Publisher, api_producer, redis_publisher
from services.api.keycache import KeyCache, keep_checked
from services.api.keys import routes as keys
from services.api.middleware import BodyLimit
from services.api.models import routes as models
from services.api.ops import health, metrics
from services.api.ops.metrics import LedgerGauges, RequestTimer, SavingsGauges
from services.api.ops.readiness import QueueConsumers
from services.api.pricecache import PriceCache, keep_fresh
from services.api.ratelimit import RequestLimiter
from services.api.redis_pool import pool_options
from services.api.reports import routes as reports
from services.api.settings import ApiSettings
from shared.costs import Profiles
from shared.heap import freeze_startup_heap
from shared.logging import configure_logging
from shared.tracing import configure_tracing, exporting


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Re-check cached API keys and re-read prices while serving; close the request path's
    pools at the end."""
    settings: ApiSettings = app.state.settings
    freeze_startup_heap()  # the app is built: keep its objects out of every full collection
    checker = asyncio.create_task(keep_checked(app.state.key_cache, settings))
    pricer = asyncio.create_task(keep_fresh(app.state.price_cache, settings))
    try:
        yield
    finally:
        for task in (checker, pricer):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await async_database(settings).close()
        await app.state.aredis.aclose()


def create_app(
    settings: ApiSettings | None = None,
    *,
    publisher: Publisher | None = None,
    profiles: Callable[[], Profiles] | None = None,
    celery_factory: Callable[[], Celery] | None = None,
) -> FastAPI:
    settings = settings or ApiSettings()
    api_settings = settings
    celery_factory = celery_factory or (lambda: api_producer(api_settings))
    configure_logging("api", settings)
    configure_tracing("api", settings)
    app = FastAPI(
        title="Tandem serve",
        version="1",
        description=(
            "Cost-capped reasoning: a large coordinator writes insights, a small executor "
            "answers. Authenticate with 'Authorization: Bearer <API key>'. Every error is "
            '{"error": {"code", "message", "field"}}, except on the OpenAI routes '
            "(/v1/chat/completions, /v1/models), which answer in OpenAI's error shape."
        ),
        lifespan=lifespan,
        # FastAPI's own request spans and metrics: only while spans are exported (below).
        telemetry=None
        if exporting(settings)
        else {"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    pool = pool_options(settings)
    app.state.redis = redis.Redis(
        connection_pool=redis.BlockingConnectionPool.from_url(settings.redis_url, **pool)
    )
    app.state.aredis = aioredis.Redis(
        connection_pool=aioredis.BlockingConnectionPool.from_url(settings.redis_url, **pool)
    )
    app.state.limiter = RequestLimiter(app.state.aredis)
    app.state.key_cache = KeyCache(settings.auth_cache_s)
    app.state.publisher = publisher or redis_publisher(app.state.aredis, settings.task_expires_s)
    app.state.price_cache = PriceCache(settings)
    app.state.profiles = profiles or app.state.price_cache.profiles
    app.state.consumers = QueueConsumers(celery_factory, settings)
    app.state.savings_gauges = SavingsGauges(settings)
    app.state.ledger_gauges = LedgerGauges(settings)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(jobs.router)
    app.include_router(chat.router)
    app.include_router(models.router)
    app.include_router(admin.router)
    app.include_router(keys.router)
    app.include_router(reports.router)
    app.include_router(alerts.router)
    app.include_router(alerts.admin_router)
    app.include_router(dashboard.router)
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestTimer)
    if exporting(settings):
        # The request's server span is the root of the job's trace (shared.tracing); no child
        # span per ASGI receive and send, which would cost more than the request's own work.
        # With nothing exported, no span at all: a submission starts its job's trace itself.
        FastAPIInstrumentor.instrument_app(
            app, excluded_urls="healthz,readyz,metrics", exclude_spans=["receive", "send"]
        )
    return app
