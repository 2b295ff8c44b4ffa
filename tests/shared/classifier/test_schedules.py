"""Each API process's copy of the active classifier's schedule: read once before the first
admission, then only in the background every ``refresh_s``, so admission stays one statement."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.exc import OperationalError

from shared.classifier.schedules import Calibrated, ScheduleCache, calibrated_of
from shared.errors import TransientError

FIRST, SECOND = Calibrated("v1", (0, 32, 96)), Calibrated("v2", (0, 8))


class Reads:
    def __init__(self, *values: Calibrated | Exception | None) -> None:
        self.values = list(values)
        self.calls = 0

    def __call__(self) -> Calibrated | None:
        value = self.values[min(self.calls, len(self.values) - 1)]
        self.calls += 1
        if isinstance(value, Exception):
            raise value
        return value


def broken() -> OperationalError:
    return OperationalError("SELECT", {}, Exception("connection refused"))


async def test_within_refresh_s_no_read_after_the_first() -> None:
    reads = Reads(FIRST, SECOND)
    cache = ScheduleCache(reads, refresh_s=3600)
    assert [await cache.current() for _ in range(5)] == [FIRST] * 5
    assert reads.calls == 1


async def test_past_refresh_s_the_next_read_runs_in_the_background() -> None:
    reads = Reads(FIRST, SECOND)
    cache = ScheduleCache(reads, refresh_s=0.01)
    assert await cache.current() == FIRST
    await asyncio.sleep(0.02)
    assert await cache.current() == FIRST  # served at once; the re-read is under way
    for _ in range(100):
        await asyncio.sleep(0.01)
        if reads.calls == 2:
            break
    assert await cache.current() == SECOND


async def test_a_failed_re_read_keeps_the_last_schedule_and_a_failed_first_read_is_a_503() -> None:
    reads = Reads(FIRST, broken())
    cache = ScheduleCache(reads, refresh_s=0.01)
    assert await cache.current() == FIRST
    await asyncio.sleep(0.02)
    await cache.current()
    await asyncio.sleep(0.05)
    assert await cache.current() == FIRST and reads.calls >= 2
    with pytest.raises(TransientError):
        await ScheduleCache(Reads(broken()), refresh_s=5).current()


async def test_with_refresh_zero_every_call_reads() -> None:
    reads = Reads(FIRST, None)
    cache = ScheduleCache(reads, refresh_s=0)
    assert [await cache.current(), await cache.current()] == [FIRST, None]


def test_a_version_without_a_schedule_leaves_the_configured_levels() -> None:
    assert calibrated_of(None) is None
    assert calibrated_of(("old", None)) is None
    assert calibrated_of(("v1", [0, 32, 96])) == FIRST
