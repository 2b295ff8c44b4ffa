"""Metrics of database state move only when that state commits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from shared.metrics import JOBS_FINISHED, OTHER_TENANT, count_job_finished, tenant_label


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    engine = create_engine(database_url)
    with Session(engine) as session:
        yield session
    engine.dispose()


def finished(status: str) -> float:
    return float(JOBS_FINISHED.labels("tandem", "code", status)._value.get())


def test_counts_after_commit_only(session: Session) -> None:
    before = finished("succeeded")
    count_job_finished(session, "tandem", "code", "succeeded")
    assert finished("succeeded") == before
    session.commit()
    assert finished("succeeded") == before + 1
    session.commit()  # a later commit does not count it again
    assert finished("succeeded") == before + 1


def test_rollback_drops_the_pending_count(session: Session) -> None:
    before = finished("failed")
    count_job_finished(session, "tandem", "code", "failed")
    session.rollback()
    session.commit()
    assert finished("failed") == before


def test_tenant_label_is_bounded_by_the_allow_list() -> None:
    assert tenant_label("acme", ["acme", "globex"]) == "acme"
    assert tenant_label("initech", ["acme"]) == OTHER_TENANT
    assert tenant_label("acme", []) == OTHER_TENANT
