"""Authentication and ownership errors."""

from __future__ import annotations

from shared.errors import TandemError


class AuthenticationFailed(TandemError):
    code = "unauthorized"
    http_status = 401


class PermissionDenied(TandemError):
    code = "forbidden"
    http_status = 403


class Conflict(TandemError):
    code = "conflict"
    http_status = 409
