"""The reports' query parameters: time range, grouping, and whose data the caller may see."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from services.api.deps import Viewer
from shared.errors import ValidationFailed
from shared.tenants import PermissionDenied


class GroupKey(StrEnum):
    DAY = "day"
    HOUR = "hour"
    MODEL = "model"
    ROLE = "role"
    DOMAIN = "domain"
    POLICY = "policy"
    TENANT = "tenant"
    KEY = "key"  # the API key that submitted the jobs (empty: none, e.g. made by an operator)


# What the usage per key (shared.rollups' key roll-ups) can be grouped by besides the key.
KEY_GROUPS = frozenset({GroupKey.KEY, GroupKey.DAY, GroupKey.HOUR, GroupKey.TENANT})


@dataclass(frozen=True)
class TimeRange:
    """Half-open [start, end), both UTC."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class Scope:
    """One tenant, or every tenant (``tenant_id`` None: the admin key without a filter)."""

    tenant_id: uuid.UUID | None


def _instant(raw: str, field: str) -> tuple[datetime, bool]:
    """An ISO date or datetime as UTC, and whether it was a date. A datetime without an
    offset is read as UTC."""
    text = raw.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC), True
        moment = datetime.fromisoformat(text)
        aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValidationFailed(
            f"{field} is not an ISO 8601 date or datetime (e.g. 2026-11-01 or "
            "2026-11-01T12:00:00Z)",
            field=field,
        ) from None
    return aware, False


def month_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def time_range(start: str | None, end: str | None, now: datetime) -> TimeRange:
    """The requested range; by default the current UTC month up to ``now``. An end date is
    that whole day: ``start=2026-11-01&end=2026-11-30`` is all of November."""
    begin = _instant(start, "start")[0] if start else month_start(now)
    if not end:
        finish = now.astimezone(UTC)
    else:
        finish, whole_day = _instant(end, "end")
        if finish < begin:
            raise ValidationFailed(
                f"end ({end}) is before start ({begin.isoformat()})", field="end"
            )
        if whole_day:
            try:
                finish += timedelta(days=1)
            except OverflowError:
                raise ValidationFailed(
                    "end is past the last representable day", field="end"
                ) from None
    if finish < begin:
        raise ValidationFailed(
            f"start ({begin.isoformat()}) is after now; pass an end", field="start"
        )
    return TimeRange(begin, finish)


def group_keys(raw: str) -> list[GroupKey]:
    """A comma list of keys, in the caller's order, duplicates dropped."""
    keys: list[GroupKey] = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            key = GroupKey(part)
        except ValueError:
            allowed = "|".join(k.value for k in GroupKey)
            raise ValidationFailed(
                f"group_by: unknown key {part!r}; use a comma list of {allowed}", field="group_by"
            ) from None
        if key not in keys:
            keys.append(key)
    if not keys:
        raise ValidationFailed("group_by needs at least one key", field="group_by")
    if GroupKey.KEY in keys and not KEY_GROUPS.issuperset(keys):
        raise ValidationFailed(
            "group_by=key combines with day, hour and tenant only", field="group_by"
        )
    return keys


def scope_for(viewer: Viewer, tenant_id: uuid.UUID | None, *, by_tenant: bool = False) -> Scope:
    """A tenant sees only itself and may neither name a tenant nor group by tenant."""
    if viewer.tenant is not None:
        if tenant_id is not None:
            raise PermissionDenied(
                "tenant_id is for the admin key; an API key sees its own tenant only",
                field="tenant_id",
            )
        if by_tenant:
            raise PermissionDenied(
                "group_by=tenant is for the admin key; an API key sees its own tenant only",
                field="group_by",
            )
        return Scope(viewer.tenant.id)
    return Scope(tenant_id)
