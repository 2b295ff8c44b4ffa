"""Prices as the table holds them: seeding from the environment, adding a price, and each role's
profile priced from the table.

The environment's prices (``TANDEM_<ROLE>_ENGINE_PRICE_*``) are only the seed: a configured
model with no row at all gets one from them, effective from the moment it is written (by
``tandem db upgrade``, or by the API's first price read). After that the table alone decides;
changing an environment price changes nothing. A model whose rows all lie in the future is
priced from the environment until the first of them takes effect.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from shared.costs import Profiles
from shared.db.models import ModelPrice, Role
from shared.engines.base import ModelProfile
from shared.errors import ValidationFailed
from shared.money import QUANTUM
from shared.prices import repository as repo
from shared.prices.errors import PriceExists

ENVIRONMENT = "environment"  # the row was seeded from the environment's prices
ADMIN = "admin"  # the row was added through the admin API or the CLI
MAX_PRICE = Decimal(1_000_000)  # per million tokens: anything above is a typing slip
MODEL_CHARS = 200


def configured_profiles() -> Profiles:
    """Each role's model as its engine is configured, with the environment's prices."""
    from shared.engines.config import engine_configs

    coordinator, executor, scorer = engine_configs(Role.COORDINATOR, Role.EXECUTOR, Role.SCORER)
    return Profiles(
        coordinator=coordinator.profile, executor=executor.profile, scorer=scorer.profile
    )


def _roles(profiles: Profiles) -> dict[Role, ModelProfile]:
    return {
        Role.COORDINATOR: profiles.coordinator,
        Role.EXECUTOR: profiles.executor,
        Role.SCORER: profiles.scoring,
    }


def seed_from_environment(session: Session, profiles: Profiles | None = None) -> list[ModelPrice]:
    """A row, from the environment's prices, for every configured model that has none."""
    configured = _roles(profiles or configured_profiles()).values()
    repo.lock_for_seeding(session)
    priced = repo.priced_models(session)
    seeded: list[ModelPrice] = []
    for profile in configured:
        if profile.name in priced:
            continue
        cached = profile.price_cached_input_per_mtok
        row = repo.add(
            session,
            ModelPrice(
                id=uuid.uuid4(),
                model=profile.name,
                prompt_per_mtok=profile.price_input_per_mtok,
                generated_per_mtok=profile.price_output_per_mtok,
                # The environment knows no cache discount: cached tokens cost the prompt price.
                cached_prompt_per_mtok=profile.price_input_per_mtok if cached is None else cached,
                source=ENVIRONMENT,
            ),
        )
        if row is not None:
            seeded.append(row)
        priced.add(profile.name)
    return seeded


def priced_profiles(session: Session, profiles: Profiles | None = None) -> Profiles:
    """Each role's configured model with the prices in force now (seeding any model with no
    row first)."""
    configured = profiles or configured_profiles()
    prices = repo.in_force(session)
    models = {p.name for p in _roles(configured).values()}
    if not models <= set(prices) and seed_from_environment(session, configured):
        prices = repo.in_force(session)

    def priced(profile: ModelProfile) -> ModelProfile:
        row = prices.get(profile.name)
        if row is None:
            return profile
        return replace(
            profile,
            price_input_per_mtok=row.prompt_per_mtok,
            price_output_per_mtok=row.generated_per_mtok,
            price_cached_input_per_mtok=row.cached_prompt_per_mtok,
            price_id=str(row.id),
        )

    return Profiles(
        coordinator=priced(configured.coordinator),
        executor=priced(configured.executor),
        scorer=None if configured.scorer is None else priced(configured.scorer),
    )


def listing(session: Session, model: str | None = None) -> list[tuple[ModelPrice, bool]]:
    """Every row (of ``model``), each model's newest first, with whether it is in force now."""
    current = {row.id for row in repo.in_force(session).values()}
    return [(row, row.id in current) for row in repo.history(session, model)]


def _checked(amount: Decimal, field: str) -> Decimal:
    if not amount.is_finite() or not 0 <= amount <= MAX_PRICE:
        raise ValidationFailed(
            f"{field} must be an amount between 0 and {MAX_PRICE} per million tokens", field=field
        )
    if amount != amount.quantize(QUANTUM):
        raise ValidationFailed(f"{field} may have at most 12 decimal places", field=field)
    return amount


def set_price(
    session: Session,
    *,
    model: str,
    prompt_per_mtok: Decimal,
    generated_per_mtok: Decimal,
    cached_prompt_per_mtok: Decimal | None = None,
    effective_from: datetime | None = None,
    new_model: bool = False,
    configured: Profiles | None = None,
) -> ModelPrice:
    """Add a price for ``model`` from ``effective_from`` (default: now) on.

    The model must be one an engine is configured with or one the table already prices, unless
    ``new_model`` says it is meant (pricing a model before its engine is switched to it); a
    misspelt name would otherwise price nothing, silently. Cached prompt tokens default to the
    prompt price and may not cost more than it (admission reserves prompts at the full price).
    """
    model = model.strip()
    if not model or len(model) > MODEL_CHARS:
        raise ValidationFailed(f"model must be 1 to {MODEL_CHARS} characters", field="model")
    prompt = _checked(prompt_per_mtok, "prompt_per_mtok")
    generated = _checked(generated_per_mtok, "generated_per_mtok")
    cached = (
        prompt
        if cached_prompt_per_mtok is None
        else _checked(cached_prompt_per_mtok, "cached_prompt_per_mtok")
    )
    if cached > prompt:
        raise ValidationFailed(
            "cached_prompt_per_mtok may not exceed prompt_per_mtok", field="cached_prompt_per_mtok"
        )
    if effective_from is not None and effective_from.utcoffset() is None:
        raise ValidationFailed(
            "effective_from needs a time zone (e.g. 2026-12-01T00:00:00Z)", field="effective_from"
        )
    if not new_model:
        known = {p.name for p in _roles(configured or configured_profiles()).values()}
        if model not in known and model not in repo.priced_models(session):
            raise ValidationFailed(
                f"no engine is configured with model {model!r} and it has no price yet; check "
                "the name, or set new_model to price it ahead of its engine",
                field="model",
            )
    row = repo.add(
        session,
        ModelPrice(
            id=uuid.uuid4(),
            model=model,
            prompt_per_mtok=prompt,
            generated_per_mtok=generated,
            cached_prompt_per_mtok=cached,
            effective_from=effective_from,
            source=ADMIN,
        ),
    )
    if row is None:
        raise PriceExists(
            f"{model} already has a price from {effective_from or 'now'}; prices are never "
            "changed in place: add one from another time",
            field="effective_from",
        )
    return row


__all__ = [
    "ADMIN",
    "ENVIRONMENT",
    "configured_profiles",
    "listing",
    "priced_profiles",
    "seed_from_environment",
    "set_price",
]
