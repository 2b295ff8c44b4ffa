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
