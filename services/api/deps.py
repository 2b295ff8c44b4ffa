"""Request dependencies: settings, the caller's tenant, the admin guard, the report viewer.

Authenticating a tenant costs nothing on the database while its key is in the key cache; the
per-tenant rate limit (the tenant's own, else the default), a key's own rate limit, and the
failed-authentication throttle run on the event loop against Redis, the throttle before any key
lookup. A key past its expiry is refused from the cached copy itself, to the second.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool

from services.api.db import unit_of_work
from services.api.errors import RateLimited
from services.api.keycache import KeyCache
from services.api.ratelimit import check_auth_failures, count_auth_failure
from services.api.settings import ApiSettings
from shared.db.models import Tenant
from shared.logging import bind
from shared.metrics import count_rejection
from shared.tenants import (
    AuthenticationFailed,
    Caller,
    KeyExpired,
    PermissionDenied,
    authenticate_key,
    hash_key,
    well_formed,
)

INVALID_KEY = "missing, invalid or revoked API key: send 'Authorization: Bearer <key>'"


async def get_settings(request: Request) -> ApiSettings:
    # async: FastAPI runs a plain ``def`` dependency in the thread pool, a hop per request.
    settings: ApiSettings = request.app.state.settings
    return settings


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]


def _bearer(authorization: str | None) -> str | None:
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _lookup(settings: ApiSettings, secret: str) -> Caller:
    with unit_of_work(settings) as session:
        return authenticate_key(
            session, secret, touch_every=timedelta(seconds=settings.key_touch_interval_s)
        )


async def _verified(request: Request, settings: ApiSettings, secret: str) -> Caller:
    cache: KeyCache = request.app.state.key_cache
    key_hash = hash_key(secret)
    caller = cache.get(key_hash)
    if caller is not None:
        # Kept cached while presented: refusing it costs Postgres nothing, and the cache's
        # re-check still sees an expiry moved later.
        if caller.expires_at is not None and caller.expired(datetime.now(UTC)):
            raise KeyExpired(caller.expires_at)
        return caller
    client = request.app.state.aredis
    address = request.client.host if request.client else "unknown"
    await check_auth_failures(client, address, settings.auth_failures_per_minute)
    try:
        if not well_formed(secret):
            raise AuthenticationFailed(INVALID_KEY)
        caller = await run_in_threadpool(_lookup, settings, secret)
    except AuthenticationFailed:  # an expired key too: it cannot succeed either
        await count_auth_failure(client, address)
        raise
    cache.put(key_hash, caller)
    return caller


async def current_tenant(request: Request) -> Tenant:
    """The tenant whose key the request carries (``Authorization: Bearer <key>`` or
    ``X-API-Key``), rate-limited. The headers are read here, not declared as parameters: on
    the submission path FastAPI's resolution of each declared parameter and sub-dependency
    cost more than the lookup itself (the app's description documents the scheme)."""
    return (await current_caller(request)).tenant


async def current_caller(request: Request) -> Caller:
    """:func:`current_tenant` with the key that authenticated the request (what submissions
    record and hold against); also left in ``request.state.caller``."""
    headers = request.headers
    return await _caller(request, _bearer(headers.get("authorization")), headers.get("x-api-key"))


async def _caller(request: Request, bearer: str | None, x_api_key: str | None) -> Caller:
    settings: ApiSettings = request.app.state.settings
    secret = (bearer or x_api_key or "").strip()
    if not secret:
        raise AuthenticationFailed(
            "missing API key: send 'Authorization: Bearer <key>'", field="Authorization"
        )
    caller = await _verified(request, settings, secret)
    tenant = caller.tenant
    bind(tenant_id=tenant.id)
    limiter = request.app.state.limiter
    try:
        if caller.rate_limit_rpm is not None:
            await limiter.count(f"key:{caller.key_id}", caller.rate_limit_rpm, limit=KEY_RATE_LIMIT)
        await limiter.count(
            str(tenant.id), tenant.rate_limit_rpm or settings.default_rate_limit_rpm
        )
    except RateLimited as refused:
        count_rejection(refused.details["limit"], tenant.name, settings.metrics_tenants)
        raise
    request.state.caller = caller
    return caller


KEY_RATE_LIMIT = "key_requests_per_minute"


TenantDep = Annotated[Tenant, Depends(current_tenant)]
CallerDep = Annotated[Caller, Depends(current_caller)]


async def require_admin(
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(description="Bearer <admin key>")] = None,
    x_admin_key: Annotated[str | None, Header(description="The admin key (alternative)")] = None,
) -> None:
    presented = x_admin_key or _bearer(authorization)
    if not presented:
        raise AuthenticationFailed("missing admin key: send X-Admin-Key", field="X-Admin-Key")
    if not hmac.compare_digest(presented.encode(), settings.admin_api_key.encode()):
        raise PermissionDenied("this key is not the admin key", field="X-Admin-Key")


@dataclass(frozen=True)
class Viewer:
    """Who reads reports: one tenant (its API key), or the operator (the admin key, every
    tenant)."""

    tenant: Tenant | None

    @property
    def is_admin(self) -> bool:
        return self.tenant is None


async def current_viewer(
    request: Request,
    settings: SettingsDep,
    authorization: Annotated[
        str | None, Header(description="Bearer <API key> or Bearer <admin key>")
    ] = None,
    x_admin_key: Annotated[str | None, Header(description="The admin key (alternative)")] = None,
    x_api_key: Annotated[str | None, Header(description="The API key (alternative)")] = None,
) -> Viewer:
    if x_admin_key is not None:
        await require_admin(settings, None, x_admin_key)
        return Viewer(tenant=None)
    bearer = _bearer(authorization)
    if bearer is not None and hmac.compare_digest(bearer.encode(), settings.admin_api_key.encode()):
        return Viewer(tenant=None)
    return Viewer(tenant=(await _caller(request, bearer, x_api_key)).tenant)


ViewerDep = Annotated[Viewer, Depends(current_viewer)]
