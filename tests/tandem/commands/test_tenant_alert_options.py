"""``tandem tenants`` sets the alert thresholds and URL through the same checks as the API."""

from __future__ import annotations

import uuid
from decimal import Decimal

from typer.testing import CliRunner

from shared.db.session import unit_of_work
from shared.tenants import get_tenant
from tandem.cli import app

runner = CliRunner()


def test_alert_options_are_checked_and_stored(database_url: str) -> None:
    name = f"cli-alerts-{uuid.uuid4().hex[:8]}"
    refused = runner.invoke(app, ["tenants", "create", name, "--alert-url", "http://10.1.2.3/"])
    assert refused.exit_code == 2 and "alert_url" in refused.output
    assert runner.invoke(app, ["tenants", "create", name, "--hard-alert", "0.9"]).exit_code == 0
    url = "https://alerts.example.com/tandem"
    changed = runner.invoke(app, ["tenants", "set-budget", name, "--alert-url", url])
    assert changed.exit_code == 0, changed.output
    inverted = runner.invoke(app, ["tenants", "set-budget", name, "--soft-alert", "0.95"])
    assert inverted.exit_code == 2
    with unit_of_work() as session:
        tenant = get_tenant(session, name)
        stored = (tenant.soft_alert_ratio, tenant.hard_alert_ratio, tenant.alert_url)
    assert stored == (Decimal("0.8"), Decimal("0.9"), url)
