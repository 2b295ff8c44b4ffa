"""Levels and the active classifier's schedule, through the real API: a version carries the
schedule it was calibrated on; the API takes a job's default levels from it and refuses (422,
``levels_not_calibrated``) a tandem job's own levels it was not calibrated on."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from services.api.settings import ApiSettings
from shared.classifier import SIM_MODEL_PATH, read_metadata, register_version
from shared.db.models import ClassifierModel, Job
from shared.db.session import unit_of_work
from tests.services.api.conftest import TenantHandle

PREFIX = "levels-"
SCHEDULE = list(read_metadata(SIM_MODEL_PATH).levels or ())


def submit(tenant: TenantHandle, **body: object) -> httpx.Response:
    return tenant.client.post(
        "/v1/jobs", json={"question": "What is 2+2?", "domain": "math", **body}
    )


@pytest.fixture
def scheduled_version(make_tenant: object) -> Iterator[str]:
    """The simulator's classifier active, with the schedule its file names."""
    version = f"{PREFIX}{uuid.uuid4().hex[:8]}"
    with unit_of_work() as session:
        register_version(session, Path(SIM_MODEL_PATH), version=version)
    yield version
    with unit_of_work() as session:
        session.execute(
            update(ClassifierModel).where(ClassifierModel.version == version).values(active=False)
        )


def test_the_schedule_is_recorded_with_the_version(scheduled_version: str) -> None:
    with unit_of_work() as session:
        row = session.scalars(
            select(ClassifierModel).where(ClassifierModel.version == scheduled_version)
        ).one()
        assert row.levels == SCHEDULE and row.stop_rule == {"kind": "threshold"}
    assert SCHEDULE and ApiSettings().levels != SCHEDULE  # the test means something


def test_jobs_default_to_the_active_versions_schedule(
    make_tenant: object, scheduled_version: str
) -> None:
    tenant = make_tenant()  # type: ignore[operator]
    accepted = submit(tenant)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["levels"] == SCHEDULE
    prefix = submit(tenant, levels=SCHEDULE[:2])
    assert prefix.status_code == 202, prefix.text


def test_levels_the_version_was_not_calibrated_on_are_refused(
    make_tenant: object, scheduled_version: str
) -> None:
    tenant = make_tenant()  # type: ignore[operator]
    other = [0, 50, 150]
    refused = submit(tenant, levels=other)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert (error["code"], error["field"]) == ("levels_not_calibrated", "levels")
    assert str(other) in error["message"] and str(SCHEDULE) in error["message"]
    assert scheduled_version in error["message"]
    assert error["calibrated_levels"] == SCHEDULE
    with unit_of_work() as session:  # nothing was admitted
        assert not session.scalars(select(Job.id).where(Job.tenant_id == tenant.id)).all()
    # Baselines use no classifier: their own levels stand.
    fixed = submit(tenant, levels=other, policy="fixed_level", level=1)
    assert fixed.status_code == 202, fixed.text


def test_without_an_active_version_the_configured_levels_apply(
    make_tenant: object, api_settings: ApiSettings
) -> None:
    tenant = make_tenant()  # type: ignore[operator]
    accepted = submit(tenant)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["levels"] == api_settings.levels
    assert submit(tenant, levels=[0, 50, 150]).status_code == 202
