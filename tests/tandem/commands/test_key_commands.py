"""``tandem keys create|update|list`` with a key's own limits, against the test database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select
from typer.testing import CliRunner

from shared.db.models import ApiKey
from shared.db.session import unit_of_work
from tandem.cli import app

runner = CliRunner()


def test_key_limits_from_the_cli(database_url: str) -> None:
    name = f"cli-keys-{uuid.uuid4().hex[:8]}"
    assert runner.invoke(app, ["tenants", "create", name, "--cap", "10"]).exit_code == 0
    limits = ["--cap", "2", "--period", "daily", "--expires", "2099-01-01T00:00:00", "--rpm", "30"]
    issued = runner.invoke(app, ["keys", "create", name, "--name", "ci", *limits])
    assert issued.exit_code == 0, issued.output
    key_id = uuid.UUID(issued.output.split("key id=")[1].split()[0])
    with unit_of_work() as session:
        key = session.get(ApiKey, key_id)
        assert key is not None
        assert (key.budget_cap, key.budget_period, key.rate_limit_rpm) == (Decimal(2), "daily", 30)
        assert key.expires_at == datetime(2099, 1, 1, tzinfo=UTC)
        prefix = key.prefix

    above = runner.invoke(app, ["keys", "create", name, "--cap", "11"])
    assert above.exit_code == 2 and "above its tenant's cap" in above.output
    assert runner.invoke(app, ["keys", "update", prefix, "--cap", "12"]).exit_code == 2
    assert runner.invoke(app, ["keys", "update", prefix]).exit_code == 2  # nothing to change
    assert runner.invoke(app, ["keys", "update", prefix, "--clear", "nope"]).exit_code == 2

    changed = runner.invoke(app, ["keys", "update", prefix, "--cap", "3", "--clear", "rpm"])
    assert changed.exit_code == 0, changed.output
    with unit_of_work() as session:
        key = session.execute(select(ApiKey).where(ApiKey.prefix == prefix)).scalar_one()
        assert key.budget_cap == Decimal(3) and key.rate_limit_rpm is None

    listed = runner.invoke(app, ["keys", "list", name])
    assert listed.exit_code == 0, listed.output
    header, row = listed.output.strip().splitlines()
    fields = dict(zip(header.split("\t"), row.split("\t"), strict=True))
    assert fields["prefix"] == prefix and fields["state"] == "active"
    assert (fields["cap"], fields["spent"], fields["rpm"]) == ("3", "0", "-")
    assert fields["period"] == datetime.now(UTC).strftime("%Y-%m-%d")
