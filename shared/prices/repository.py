"""All SQL of the price table: rows are inserted, never updated or deleted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.orm import Session

from shared.db.models import ModelPrice

# Seeding takes this transaction-level advisory lock, so that replicas starting together seed a
# model once (the second finds the first's row).
_SEED_LOCK = 0x7072_6963_6573  # "prices"


def in_force(session: Session, at: datetime | None = None) -> dict[str, ModelPrice]:
    """Each model's price in force at ``at`` (default: now): its latest row not after it."""
    moment = func.now() if at is None else at
    rows = session.scalars(
        select(ModelPrice)
        .where(ModelPrice.effective_from <= moment)
        .ext(distinct_on(ModelPrice.model))
        .order_by(ModelPrice.model, ModelPrice.effective_from.desc())
    )
    return {row.model: row for row in rows}


def history(session: Session, model: str | None = None) -> list[ModelPrice]:
    """Every row (of ``model``), each model's newest first."""
    query = select(ModelPrice).order_by(ModelPrice.model, ModelPrice.effective_from.desc())
    if model is not None:
        query = query.where(ModelPrice.model == model)
    return list(session.scalars(query))


def priced_models(session: Session) -> set[str]:
    return set(session.scalars(select(ModelPrice.model).distinct()))


def add(session: Session, price: ModelPrice) -> ModelPrice | None:
    """Insert ``price`` (with no ``effective_from``: from the transaction's start, so it is in
    force for the rest of the transaction too); None, and nothing written, when its model
    already has a row from that very time."""
    values = {
        "id": price.id,
        "model": price.model,
        "prompt_per_mtok": price.prompt_per_mtok,
        "generated_per_mtok": price.generated_per_mtok,
        "cached_prompt_per_mtok": price.cached_prompt_per_mtok,
        "effective_from": price.effective_from or func.now(),
        "source": price.source,
    }
    inserted = session.scalars(
        insert(ModelPrice)
        .values(values)
        .on_conflict_do_nothing(index_elements=["model", "effective_from"])
        .returning(ModelPrice)
    ).first()
    return inserted


def lock_for_seeding(session: Session) -> None:
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SEED_LOCK})
