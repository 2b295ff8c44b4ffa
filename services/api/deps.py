"""Request dependencies: settings, the caller's tenant, the admin guard."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool

from services.api.errors import RateLimited
from services.api.ratelimit import check_rate
from services.api.settings import ApiSettings
from shared.db.models import Tenant
from shared.db.session import unit_of_work
from shared.logging import bind
from shared.metrics import count_rejection
from shared.tenants import AuthenticationFailed, PermissionDenied, authenticate


def get_settings(request: Request) -> ApiSettings:
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


def _authenticate(settings: ApiSettings, secret: str) -> Tenant:
    with unit_of_work(settings.database_url) as session:
        return authenticate(session, secret)


async def current_tenant(
    request: Request,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(description="Bearer <API key>")] = None,
    x_api_key: Annotated[str | None, Header(description="The API key (alternative)")] = None,
) -> Tenant:
    secret = _bearer(authorization) or x_api_key
    if not secret:
        raise AuthenticationFailed(
            "missing API key: send 'Authorization: Bearer <key>'", field="Authorization"
        )
    tenant = await run_in_threadpool(_authenticate, settings, secret)
    bind(tenant_id=tenant.id)
    try:
        await run_in_threadpool(
            check_rate, request.app.state.redis, tenant.id, tenant.rate_limit_rpm
        )
    except RateLimited:
        count_rejection("requests_per_minute", tenant.name, settings.metrics_tenants)
        raise
    return tenant


TenantDep = Annotated[Tenant, Depends(current_tenant)]


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
    return Viewer(tenant=await current_tenant(request, settings, authorization, x_api_key))


ViewerDep = Annotated[Viewer, Depends(current_viewer)]
