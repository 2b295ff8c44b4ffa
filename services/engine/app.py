"""The app factory: one backend, TGI's routes and the OpenAI-compatible ones, TGI's errors.

The routes live in :mod:`services.engine.routes` (one router per concern); this module only
builds the backend at start-up and assembles the routers, the error handlers and the state
they share.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.engine.backends.base import Backend
from services.engine.errors import install_error_handlers
from services.engine.faults import FaultInjector
from services.engine.generation import Generator
from services.engine.metrics import EngineMetrics
from services.engine.routes import generate, info, openai
from services.engine.routes.info import VERSION
from services.engine.settings import EngineServerSettings

log = logging.getLogger(__name__)
BackendFactory = Callable[[EngineServerSettings], Backend]


def build_backend(settings: EngineServerSettings) -> Backend:
    """The backend the settings ask for (the real one imports torch only here)."""
    if settings.backend == "sim":
        from services.engine.backends.sim import SimBackend, SimKnobs

        return SimBackend(
            settings.model,
            SimKnobs.from_settings(settings),
            model_id=settings.model_id,
            prefix_cache_tokens=settings.prefix_cache_tokens,
        )
    from services.engine.backends.gguf import GGUFBackend

    return GGUFBackend(
        settings.model,
        cache_dir=settings.cache_dir,
        dtype=settings.dtype,
        threads=settings.threads,
        model_id=settings.model_id,
        logprob_chunk_tokens=settings.logprob_chunk_tokens,
        prefix_cache_tokens=settings.prefix_cache_tokens,
    )


def create_app(
    settings: EngineServerSettings | None = None,
    *,
    backend: Backend | None = None,
    backend_factory: BackendFactory = build_backend,
) -> FastAPI:
    """The app; the backend is built at start-up (so ``/health`` answers once it is loaded)."""
    settings = settings or EngineServerSettings()
    metrics = EngineMetrics()
    from_headers = (
        settings.faults_from_headers
        if settings.faults_from_headers is not None
        else settings.backend == "sim"
    )
    faults = FaultInjector(settings.sim_faults, from_headers=from_headers)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loaded = backend or backend_factory(settings)
        app.state.generator = Generator(loaded, settings, metrics, faults)
        log.info("engine ready: %s backend, model %s", loaded.name, loaded.model_id)
        yield
        await loaded.aclose()

    app = FastAPI(title="Tandem local engine (TGI-compatible)", version=VERSION, lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = metrics
    install_error_handlers(app, metrics)
    for module in (generate, info, openai):
        app.include_router(module.router)
    return app
