"""The prices a job was admitted under, kept on its row (``jobs.prices``).

Admission writes each role's prices, as the API's price cache had them, in its one statement;
the workers charge the job's calls, and the scorer bounds what is left of its plan, at these
and not at whatever the table says later, so a price change never changes what an admitted
job costs or what its reports say.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from shared.costs import Profiles
from shared.db.models import Role
from shared.engines.base import ModelProfile
from shared.money import plain


def _entry(profile: ModelProfile) -> dict[str, str | None]:
    cached = profile.price_cached_input_per_mtok
    return {
        "model": profile.name,
        "price_id": profile.price_id,
        "prompt": plain(profile.price_input_per_mtok),
        "generated": plain(profile.price_output_per_mtok),
        "cached_prompt": plain(profile.price_input_per_mtok if cached is None else cached),
    }


def snapshot(profiles: Profiles) -> dict[str, dict[str, str | None]]:
    """Each role's model and prices, as stored on the job."""
    return {
        Role.COORDINATOR.value: _entry(profiles.coordinator),
        Role.EXECUTOR.value: _entry(profiles.executor),
        Role.SCORER.value: _entry(profiles.scoring),
    }


def priced(profile: ModelProfile, prices: dict[str, Any] | None, role: Role) -> ModelProfile:
    """``profile`` (the model as the worker's engine is configured) with the job's prices for
    ``role``; as it is for a job admitted before jobs kept their prices."""
    entry = (prices or {}).get(role.value)
    if entry is None:
        return profile
    return replace(
        profile,
        price_input_per_mtok=Decimal(entry["prompt"]),
        price_output_per_mtok=Decimal(entry["generated"]),
        price_cached_input_per_mtok=Decimal(entry["cached_prompt"]),
        price_id=entry.get("price_id"),
    )


def job_profiles(configured: Profiles, prices: dict[str, Any] | None) -> Profiles:
    """Every role's profile at the job's prices."""
    return Profiles(
        coordinator=priced(configured.coordinator, prices, Role.COORDINATOR),
        executor=priced(configured.executor, prices, Role.EXECUTOR),
        scorer=priced(configured.scoring, prices, Role.SCORER),
    )
