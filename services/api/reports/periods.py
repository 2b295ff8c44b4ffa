"""A report's range cut along the roll-ups' periods: whole UTC days from the daily level, the
whole hours around them from the hourly level, and (for figures exact to the instant) the
partial hours at either end from the jobs themselves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

Span = tuple[datetime, datetime]  # half-open [start, end)


def _floor(moment: datetime, unit: timedelta) -> datetime:
    if unit == DAY:
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(minute=0, second=0, microsecond=0)


def _ceil(moment: datetime, unit: timedelta) -> datetime:
    floor = _floor(moment, unit)
    return floor if floor == moment else floor + unit


@dataclass(frozen=True)
class Cut:
    days: list[Span]  # read from the daily roll-ups
    hours: list[Span]  # read from the hourly roll-ups
    raw: list[Span]  # read from the jobs
    whole: Span  # what the roll-ups cover: [first whole hour, last whole hour)


def _by_days(start: datetime, end: datetime) -> tuple[list[Span], list[Span]]:
    first, last = _ceil(start, DAY), _floor(end, DAY)
    if first >= last:
        return [], [(start, end)] if start < end else []
    hours = [(a, b) for a, b in ((start, first), (last, end)) if a < b]
    return [(first, last)], hours


def exact(start: datetime, end: datetime) -> Cut:
    """For figures of the jobs created in exactly [start, end); both UTC."""
    first, last = _ceil(start, HOUR), _floor(end, HOUR)
    if first >= last:  # within one hour, or empty: the jobs themselves (never no part at all)
        return Cut([], [], [(start, end)], (start, start))
    days, hours = _by_days(first, last)
    raw = [(a, b) for a, b in ((start, first), (last, end)) if a < b]
    return Cut(days, hours, raw, (first, last))


def by_hour(start: datetime, end: datetime) -> Cut:
    """For figures resolved to the hour: every hour that starts in [hour of start, end)."""
    first, last = _floor(start, HOUR), _ceil(end, HOUR)
    days, hours = _by_days(first, last)
    return Cut(days, hours, [], (first, last))


def hours_only(start: datetime, end: datetime) -> Cut:
    """Like :func:`by_hour`, all of it from the hourly level (a view grouped by hour)."""
    first, last = _floor(start, HOUR), _ceil(end, HOUR)
    return Cut([], [(first, last)] if first < last else [], [], (first, last))
