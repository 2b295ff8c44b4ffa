"""Tenants and their API keys (shown once, stored as a SHA-256 hash, revocable)."""

from shared.tenants.errors import AuthenticationFailed, Conflict, PermissionDenied
from shared.tenants.service import (
    IssuedKey,
    authenticate,
    create_key,
    create_tenant,
    get_tenant,
    hash_key,
    list_keys,
    list_tenants,
    revoke_key,
    update_tenant,
)

__all__ = [
    "AuthenticationFailed",
    "Conflict",
    "IssuedKey",
    "PermissionDenied",
    "authenticate",
    "create_key",
    "create_tenant",
    "get_tenant",
    "hash_key",
    "list_keys",
    "list_tenants",
    "revoke_key",
    "update_tenant",
]
