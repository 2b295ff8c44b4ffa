"""The FastAPI application factory (``tandem api serve`` runs ``create_app``)."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import redis
from celery import Celery
from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from starlette.types import ASGIApp, Receive, Scope, Send

from services.api import metrics
from services.api.errors import PayloadTooLarge, error_response, install_error_handlers
from services.api.metrics import RequestTimer, SavingsGauges
from services.api.plans import load_profiles
from services.api.publish import Publisher, celery_publisher
from services.api.readiness import QueueConsumers
from services.api.routes import admin, chat, dashboard, health, jobs, reports
from services.api.settings import ApiSettings
from shared.celery_base import producer_app
from shared.costs import Profiles
from shared.logging import configure_logging
from shared.tracing import configure_tracing


class BodyLimit:
    """Refuse bodies over the limit from their Content-Length before reading them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
                response = error_response(
                    PayloadTooLarge(f"request body over {self.max_bytes} bytes")
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(
    settings: ApiSettings | None = None,
    *,
    publisher: Publisher | None = None,
    profiles: Callable[[], Profiles] | None = None,
    celery_factory: Callable[[], Celery] | None = None,
) -> FastAPI:
    settings = settings or ApiSettings()
    api_settings = settings
    celery_factory = celery_factory or (lambda: producer_app(api_settings))
    configure_logging("api", settings)
    configure_tracing("api", settings)
    app = FastAPI(
        title="Tandem serve",
        version="1",
        description=(
            "Cost-capped reasoning: a large coordinator writes insights, a small executor "
            "answers. Authenticate with 'Authorization: Bearer <API key>'. Every error is "
            '{"error": {"code", "message", "field"}}.'
        ),
    )
    app.state.settings = settings
    app.state.redis = redis.Redis.from_url(settings.redis_url)
    app.state.publisher = publisher or celery_publisher(celery_factory)
    app.state.profiles = profiles or lru_cache(maxsize=1)(load_profiles)
    app.state.consumers = QueueConsumers(celery_factory, settings)
    app.state.savings_gauges = SavingsGauges(settings)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(jobs.router)
    app.include_router(chat.router)
    app.include_router(admin.router)
    app.include_router(reports.router)
    app.include_router(dashboard.router)
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestTimer)
    # The request's server span is the root of the job's trace (shared.tracing).
    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,metrics")
    return app
