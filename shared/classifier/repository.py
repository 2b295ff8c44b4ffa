"""SQL of the classifier_models table."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.db.models import ClassifierModel


def active(session: Session) -> ClassifierModel | None:
    return session.scalars(select(ClassifierModel).where(ClassifierModel.active.is_(True))).first()


def by_version(session: Session, version: str) -> ClassifierModel | None:
    return session.scalars(
        select(ClassifierModel).where(ClassifierModel.version == version)
    ).first()


def activate(session: Session, row: ClassifierModel) -> None:
    """Make ``row`` the one active version (the partial unique index allows only one)."""
    session.execute(
        update(ClassifierModel)
        .where(ClassifierModel.active.is_(True), ClassifierModel.id != row.id)
        .values(active=False)
    )
    session.flush()
    row.active = True
    row.activated_at = datetime.now(UTC)
    session.flush()


def active_schedule(session: Session) -> tuple[str, list[int] | None] | None:
    """The active version's name and level schedule (one indexed row; None: none active)."""
    row = session.execute(
        select(ClassifierModel.version, ClassifierModel.levels).where(
            ClassifierModel.active.is_(True)
        )
    ).first()
    return None if row is None else (row.version, row.levels)
