"""Authentication and ownership errors."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from shared.errors import TandemError, ValidationFailed
from shared.money import plain


class AuthenticationFailed(TandemError):
    code = "unauthorized"
    http_status = 401


class PermissionDenied(TandemError):
    code = "forbidden"
    http_status = 403


class Conflict(TandemError):
    code = "conflict"
    http_status = 409


class KeyExpired(AuthenticationFailed):
    """The key was valid until its ``expires_at``: a new key is needed, not a retry."""

    code = "key_expired"

    def __init__(self, expires_at: datetime) -> None:
        super().__init__(
            f"this API key expired at {expires_at.isoformat()}; ask for a new one",
            expired_at=expires_at.isoformat(),
        )


class KeyCapAboveTenant(ValidationFailed):
    """A key's cap may only narrow its tenant's."""

    code = "key_cap_above_tenant"

    def __init__(self, cap: Decimal, tenant_cap: Decimal) -> None:
        super().__init__(
            f"the key's budget cap {plain(cap)} is above its tenant's cap {plain(tenant_cap)}; "
            "lower it or raise the tenant's",
            field="budget_cap",
            tenant_cap=plain(tenant_cap),
        )
