"""The API's price cache against real Postgres: the first read seeds, later reads are memory
only, and the background re-read picks up a price added elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from decimal import Decimal

from services.api.pricecache import PriceCache, keep_fresh
from services.api.settings import ApiSettings
from shared.costs import Profiles
from shared.db.session import unit_of_work
from shared.engines.base import ModelProfile
from shared.prices import set_price


def own_models() -> Profiles:
    tag = uuid.uuid4().hex[:8]
    return Profiles(
        coordinator=ModelProfile(f"llm-{tag}", 1000, Decimal("0.5"), Decimal("1.5")),
        executor=ModelProfile(f"slm-{tag}", 100, Decimal("0.05"), Decimal("0.15")),
    )


async def test_a_price_added_elsewhere_is_charged_after_the_next_re_read(
    database_url: str,
) -> None:
    configured = own_models()
    settings = ApiSettings(database_url=database_url, price_refresh_s=0.05)
    cache = PriceCache(settings, lambda: configured)
    first = cache.profiles()  # no row yet: seeded from the configured (environment) prices
    assert first.coordinator.price_id is not None
    assert first.coordinator.price_input_per_mtok == Decimal("0.5")
    with unit_of_work(database_url) as session:  # another replica, or the CLI
        set_price(
            session,
            model=configured.coordinator.name,
            prompt_per_mtok=Decimal(2),
            generated_per_mtok=Decimal(3),
        )
    assert cache.profiles() is first  # memory only until the next re-read
    task = asyncio.create_task(keep_fresh(cache, settings))
    try:
        for _ in range(100):
            if cache.profiles().coordinator.price_input_per_mtok == Decimal(2):
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    current = cache.profiles()
    assert current.coordinator.price_input_per_mtok == Decimal(2)
    assert current.coordinator.price_cached_input_per_mtok == Decimal(2)
    assert current.executor.price_id == first.executor.price_id  # unchanged, not re-seeded
