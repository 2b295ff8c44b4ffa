"""Group commit on a budget row: one tenant's concurrent admissions in one statement.

Submissions of one tenant that arrive together would each run admission's statement, and each
would wait for the one before it to release the tenant's budget row; Postgres pays for every
wait (the backend sleeps on the row, wakes, re-checks its new version). Instead each API
process keeps a lane per budget (the tenant and period, the key and its period). A submission
that finds its lane idle runs its own statement at once, as it would alone; those that arrive
while a statement of the lane is in flight wait for it, then go in ONE statement together
(:func:`shared.jobs.repository.admit_together`: each at its first plan, all or none), up to
:data:`MAX_BATCH` at a time. When they do not all fit (the budget is nearly spent), a budget
row is missing or the server refuses that statement, each is admitted alone after all: a shrunk
plan, a refusal's figures and an idempotent replay are the same as without the lane. A batch
whose connection failed may have committed, so it is not tried again: each of its submissions
gets the error, as a statement of its own would have. A waiter waits for the statement in
flight, then its batch's, then (when the batch went back) its own, each bounded by the pool's
timeouts; for more batches only when over :data:`MAX_BATCH` wait.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import asyncpg

from services.api.db import AsyncDatabase
from shared.jobs import repository as jobs
from shared.metrics import ADMISSION_BATCH

log = logging.getLogger(__name__)

MAX_BATCH = 64  # jobs in one statement: its arrays stay small, its lock short

Result = TypeVar("Result")


@dataclass(frozen=True)
class Lane:
    """What a batch shares: the budget rows it is held in."""

    tenant_id: uuid.UUID
    period_key: str
    key_id: uuid.UUID | None
    key_period: str | None


# A submission waiting for its lane: its job, and where its batch's outcome is set (None: go
# alone).
_Waiting = tuple[jobs.Together, asyncio.Future[jobs.Admitted | None]]


class Lanes:
    """One event loop's lanes (futures belong to the loop they were made on)."""

    def __init__(self, database: AsyncDatabase) -> None:
        self._database = database
        # A lane with a statement in flight, and who waits for it.
        self._busy: dict[Lane, list[_Waiting]] = {}
        self._draining: set[asyncio.Task[None]] = set()

    async def admit(
        self,
        lane: Lane,
        together: jobs.Together,
        alone: Callable[[], Awaitable[Result]],
    ) -> Result | jobs.Admitted:
        """``together``'s job admitted with others of its lane when a statement of the lane
        is in flight; else (or when the batch could not take it) whatever ``alone`` gives."""
        waiting = self._busy.get(lane)
        if waiting is not None:
            admitted: asyncio.Future[jobs.Admitted | None] = (
                asyncio.get_running_loop().create_future()
            )
            waiting.append((together, admitted))
            result = await admitted
            return result if result is not None else await alone()
        self._busy[lane] = []
        try:
            return await alone()
        finally:
            self._next(lane)

    def _next(self, lane: Lane) -> None:
        """The lane's statement is done: admit who waited for it, or leave the lane idle."""
        waiting = self._busy[lane]
        if not waiting:
            del self._busy[lane]
            return
        batch = waiting[:MAX_BATCH]
        del waiting[:MAX_BATCH]
        task = asyncio.get_running_loop().create_task(self._together(lane, batch))
        self._draining.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(self._draining.discard)

    async def _together(
        self,
        lane: Lane,
        batch: list[_Waiting],
    ) -> None:
        waiting = [(item, future) for item, future in batch if not future.done()]
        results: list[jobs.Admitted] | None = None
        failed: Exception | None = None
        try:
            if waiting:
                async with self._database.connection() as connection:
                    results = await jobs.admit_together(
                        connection,
                        [item for item, _future in waiting],
                        tenant_id=lane.tenant_id,
                        period_key=lane.period_key,
                        key_id=lane.key_id,
                        key_period=lane.key_period,
                    )
        except asyncpg.PostgresError as refused:
            # The server refused the statement, so it wrote nothing: each is admitted alone
            # (where a reused idempotency key replays). A lost connection is no refusal.
            if isinstance(refused, asyncpg.PostgresConnectionError):
                failed = refused
            else:
                log.debug("a batch of %d admissions goes alone", len(waiting), exc_info=True)
        except Exception as exc:  # the batch may have committed: no retry
            failed = exc
        finally:
            if waiting:
                outcome = "failed" if failed else "together" if results is not None else "alone"
                ADMISSION_BATCH.labels(outcome).observe(len(waiting))
            for i, (_item, future) in enumerate(waiting):
                if future.done():  # its request was cancelled meanwhile
                    continue
                if failed is not None:
                    future.set_exception(failed)
                else:
                    future.set_result(None if results is None else results[i])
            self._next(lane)


_LANES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[AsyncDatabase, Lanes]] = (
    weakref.WeakKeyDictionary()
)


def lanes(database: AsyncDatabase) -> Lanes:
    """The running loop's lanes for ``database``."""
    per_loop = _LANES.setdefault(asyncio.get_running_loop(), {})
    found = per_loop.get(database)
    if found is None:
        found = per_loop[database] = Lanes(database)
    return found
