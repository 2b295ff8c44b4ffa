"""A tenant's view of its keys, over one unit of work each; the SQL is :mod:`shared.tenants` and
:mod:`shared.budgets` (as for the admin routes), so this domain has no repository of its own."""

from __future__ import annotations

from services.api.admin.schemas import KeyOut
from services.api.admin.service import keys_with_spend
from services.api.db import unit_of_work
from services.api.settings import ApiSettings
from shared import tenants
from shared.db.models import Tenant
from shared.tenants import Caller


def list_keys(settings: ApiSettings, tenant: Tenant) -> list[KeyOut]:
    with unit_of_work(settings) as session:
        owner = tenants.get_tenant(session, tenant.id)
        return keys_with_spend(session, owner, tenants.list_keys(session, owner))


def current_key(settings: ApiSettings, caller: Caller) -> KeyOut:
    with unit_of_work(settings) as session:
        owner = tenants.get_tenant(session, caller.tenant.id)
        key = tenants.get_key(session, str(caller.key_id), owner)
        return keys_with_spend(session, owner, [key])[0]
