"""The active classifier version's level schedule, as the API admits jobs by it.

A version is calibrated on one schedule of insight-token budgets (:mod:`shared.classifier.rules`);
the API takes a job's default levels from it and refuses a tandem job whose own levels it was not
calibrated on. Admission is one SQL statement, so the schedule is not read per request: each
process keeps it, reads it once before its first admission, and then re-reads it in the
background at most every ``refresh_s`` (the pattern of the scorer's ``classifier_refresh_s``:
an activation applies within that time). A failed re-read keeps the last schedule.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from shared.errors import TransientError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Calibrated:
    """The active version and the schedule it was calibrated on."""

    version: str
    levels: tuple[int, ...]


def calibrated_of(active: tuple[str, list[int] | None] | None) -> Calibrated | None:
    """None while no version is active or the active one names no schedule (then the API's
    configured levels apply, as before versions carried one)."""
    if active is None or active[1] is None:
        return None
    return Calibrated(active[0], tuple(int(b) for b in active[1]))


class ScheduleCache:
    """``await current()`` costs no statement except the process's first (or every call when
    ``refresh_s`` is 0); ``read`` runs in a worker thread."""

    def __init__(self, read: Callable[[], Calibrated | None], refresh_s: float) -> None:
        self._read = read
        self._refresh_s = refresh_s
        self._value: Calibrated | None = None
        self._read_at: float | None = None
        self._pending: asyncio.Task[None] | None = None

    async def current(self) -> Calibrated | None:
        if self._read_at is None or self._refresh_s <= 0:
            try:
                await self._refresh()
            except SQLAlchemyError as exc:
                raise TransientError("the database is unreachable; retry shortly") from exc
        elif time.monotonic() - self._read_at >= self._refresh_s and not self._refreshing():
            self._pending = asyncio.create_task(self._refresh_later())
        return self._value

    def _refreshing(self) -> bool:
        """A re-read is under way on this event loop (one left on a closed loop never ends)."""
        pending = self._pending
        return (
            pending is not None
            and not pending.done()
            and pending.get_loop() is asyncio.get_running_loop()
        )

    async def _refresh(self) -> None:
        value = await asyncio.to_thread(self._read)
        self._value, self._read_at = value, time.monotonic()

    async def _refresh_later(self) -> None:
        try:
            await self._refresh()
        except SQLAlchemyError:
            log.warning("the active classifier's schedule could not be re-read", exc_info=True)
            self._read_at = time.monotonic()  # try again after refresh_s, keep the last one
        finally:
            self._pending = None
