"""Verified API keys, kept while in use and re-checked against Postgres all at once.

Keyed by the key's SHA-256 (the secret itself is not kept). A key costs Postgres one lookup when
first presented to this process; after that, every ``auth_cache_s`` one statement re-checks
every cached key together (:func:`keep_checked`: still issued, not revoked, tenant active, and
the tenant's and the key's current limits and expiry), so a key revoked or a tenant or key
changed anywhere (another replica, the CLI, SQL) stops working or changes here within that
interval, while a busy key is never looked up again per request. The same pass records keys'
``last_used_at`` at most once per ``key_touch_interval_s``. An entry not re-checked for two
intervals (Postgres unreachable) is not trusted: the next request looks its key up again. A key
revoked or changed, or a tenant changed, through this process is forgotten at once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from services.api.db import unit_of_work
from services.api.settings import ApiSettings
from shared.tenants import Caller, caller_of
from shared.tenants import repository as tenants

log = logging.getLogger(__name__)

MAX_ENTRIES = 10_000
IDLE_S = 600.0  # an entry unused this long is dropped at the next check


@dataclass
class _Entry:
    caller: Caller
    checked_at: float
    used_at: float
    touched_at: float  # when last_used_at was last written (or found recent)


class KeyCache:
    def __init__(self, check_s: float) -> None:
        self.check_s = check_s
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def get(self, key_hash: str) -> Caller | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        now = time.monotonic()
        if now - entry.checked_at > 2 * self.check_s:
            with self._lock:
                self._entries.pop(key_hash, None)
            return None
        entry.used_at = now
        return entry.caller

    def put(self, key_hash: str, caller: Caller) -> None:
        """A key just verified by a lookup (which also recorded its use)."""
        if self.check_s <= 0:
            return
        now = time.monotonic()
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._drop_idle(now)
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()
            self._entries[key_hash] = _Entry(caller, now, now, now)

    def forget_key(self, key_hash: str) -> None:
        with self._lock:
            self._entries.pop(key_hash, None)

    def forget_tenant(self, tenant_id: uuid.UUID) -> None:
        with self._lock:
            self._entries = {
                k: v for k, v in self._entries.items() if v.caller.tenant.id != tenant_id
            }

    def _drop_idle(self, now: float) -> None:
        self._entries = {k: v for k, v in self._entries.items() if now - v.used_at < IDLE_S}

    def check(self, settings: ApiSettings) -> None:
        """Re-check every cached key in one unit of work; drop those no longer valid."""
        started = time.monotonic()
        touch_s = settings.key_touch_interval_s
        with self._lock:
            self._drop_idle(started)
            entries = dict(self._entries)
        if not entries:
            return
        to_touch = [
            k
            for k, e in entries.items()
            if e.used_at > e.touched_at and e.used_at - e.touched_at >= touch_s
        ]
        with unit_of_work(settings) as session:
            valid = tenants.valid_keys(session, list(entries))
            if to_touch:
                tenants.touch_keys(session, to_touch, datetime.now(UTC), timedelta(seconds=touch_s))
        with self._lock:
            for key_hash, entry in entries.items():
                if self._entries.get(key_hash) is not entry:
                    continue  # forgotten or replaced meanwhile: that is newer than this check
                found = valid.get(key_hash)
                if found is None:
                    del self._entries[key_hash]
                    continue
                entry.caller = caller_of(*found)
                entry.checked_at = started
                if key_hash in to_touch:
                    entry.touched_at = started


async def keep_checked(cache: KeyCache, settings: ApiSettings) -> None:
    """Re-check the cache every ``check_s`` until cancelled (the app's lifetime)."""
    if cache.check_s <= 0:
        return
    while True:
        await asyncio.sleep(cache.check_s)
        try:
            await run_in_threadpool(cache.check, settings)
        except SQLAlchemyError:
            log.warning("API keys could not be re-checked; entries expire", exc_info=True)
