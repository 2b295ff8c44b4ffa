"""The scorer's cache of the active classifier version: Postgres is asked at most every
``refresh_s``, so an activation applies within that time (and at once after forget_active)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import update

from shared.classifier import SIM_MODEL_PATH, ClassifierRuntime, register_version
from shared.db.models import ClassifierModel
from shared.db.session import unit_of_work

PREFIX = "refresh-"


def activate(thresholds: list[float]) -> str:
    version = f"{PREFIX}{uuid.uuid4().hex[:8]}"
    with unit_of_work() as session:
        register_version(session, SIM_MODEL_PATH, version=version, thresholds=thresholds)
    return version


pytestmark = pytest.mark.usefixtures("database_url")  # the per-process test database


@pytest.fixture(autouse=True)
def none_left_active() -> Iterator[None]:
    """The test database is shared with the end-to-end tests, whose scorers would otherwise
    serve this module's last version (and its thresholds) instead of the default classifier."""
    yield
    with unit_of_work() as session:
        session.execute(
            update(ClassifierModel)
            .where(ClassifierModel.version.startswith(PREFIX))
            .values(active=False)
        )


def current_version(runtime: ClassifierRuntime) -> str:
    with unit_of_work() as session:
        return runtime.current(session).version


def test_a_cached_version_is_kept_for_refresh_s_then_asked_again() -> None:
    first = activate([0.5])
    cached = ClassifierRuntime(SIM_MODEL_PATH, refresh_s=3600)
    assert current_version(cached) == first
    second = activate([0.25])
    assert current_version(cached) == first  # within refresh_s: no query, the old version
    cached.forget_active()
    assert current_version(cached) == second
    with unit_of_work() as session:
        assert cached.current(session).thresholds == (0.25,)


def test_with_refresh_zero_every_call_sees_the_active_version() -> None:
    activate([0.5])
    fresh = ClassifierRuntime(SIM_MODEL_PATH, refresh_s=0)
    current_version(fresh)
    latest = activate([0.75])
    assert current_version(fresh) == latest
