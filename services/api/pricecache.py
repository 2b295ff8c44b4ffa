"""The prices admission charges, kept in the process and re-read every ``price_refresh_s``.

Admission is one statement; reading the price table on every submission would make it two.
So each API process holds every role's profile priced from the table (:func:`shared.prices.
priced_profiles`) and a background task re-reads it every ``price_refresh_s``: a price added
anywhere (another replica, the CLI) is charged to new jobs here within that time, one added
through this process at once. The first read also seeds the table from the environment's
prices for any configured model it lacks. Postgres unreachable: the last prices read stay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import lru_cache

from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from services.api.db import unit_of_work
from services.api.settings import ApiSettings
from shared.costs import Profiles
from shared.errors import TandemError
from shared.prices import configured_profiles, priced_profiles

log = logging.getLogger(__name__)


class PriceCache:
    def __init__(
        self, settings: ApiSettings, configured: Callable[[], Profiles] | None = None
    ) -> None:
        self.settings = settings
        # Which model each role runs is read once: the engines' variables are the process's
        # (changing them means restarting it); only the prices are re-read.
        self._configured = configured or lru_cache(maxsize=1)(configured_profiles)
        self._profiles: Profiles | None = None

    def profiles(self) -> Profiles:
        """Every role's model at the prices in force when last read."""
        current = self._profiles
        # Only before the background task's first read (or without the app's lifespan).
        return current if current is not None else self.refresh()

    def refresh(self) -> Profiles:
        with unit_of_work(self.settings) as session:
            profiles = priced_profiles(session, self._configured())
        self._profiles = profiles
        return profiles


async def keep_fresh(cache: PriceCache, settings: ApiSettings) -> None:
    """Read the prices now, then every ``price_refresh_s``, until cancelled (the app's life)."""
    while True:
        try:
            await run_in_threadpool(cache.refresh)
        except (SQLAlchemyError, TandemError):  # Postgres away, or an engine not configured
            log.warning("prices could not be re-read; the last ones read stay", exc_info=True)
        await asyncio.sleep(settings.price_refresh_s)
