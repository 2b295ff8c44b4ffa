"""``tandem tenants|keys|ledger`` against the test database."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import select, update
from typer.testing import CliRunner

from shared.db.models import ApiKey, Budget, Tenant
from shared.db.session import unit_of_work
from shared.tenants import authenticate
from tandem.cli import app

runner = CliRunner()


def test_tenant_key_and_ledger_commands(database_url: str) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    created = runner.invoke(app, ["tenants", "create", name, "--cap", "2.5", "--rpm", "60"])
    assert created.exit_code == 0, created.output
    assert "webhook secret" in created.output
    assert runner.invoke(app, ["tenants", "create", name]).exit_code == 2

    listed = runner.invoke(app, ["tenants", "list"])
    assert listed.exit_code == 0 and name in listed.output

    changed = runner.invoke(app, ["tenants", "set-budget", name, "--cap", "7"])
    assert changed.exit_code == 0, changed.output
    with unit_of_work() as session:
        tenant = session.execute(select(Tenant).where(Tenant.name == name)).scalar_one()
        assert tenant.budget_cap == Decimal(7) and tenant.rate_limit_rpm == 60
    assert runner.invoke(app, ["tenants", "set-budget", name, "--cap", "-1"]).exit_code == 2
    cleared = runner.invoke(app, ["tenants", "set-budget", name, "--clear", "rate_limit_rpm"])
    assert cleared.exit_code == 0, cleared.output
    refused = runner.invoke(app, ["tenants", "set-budget", name, "--clear", "budget_cap"])
    assert refused.exit_code == 2 and "budget_cap cannot be removed" in refused.output
    with unit_of_work() as session:
        tenant = session.execute(select(Tenant).where(Tenant.name == name)).scalar_one()
        assert tenant.rate_limit_rpm is None and tenant.budget_cap == Decimal(7)

    issued = runner.invoke(app, ["keys", "create", name, "--name", "ops"])
    assert issued.exit_code == 0, issued.output
    secret = issued.output.strip().splitlines()[-1]
    with unit_of_work() as session:
        assert authenticate(session, secret).name == name
        prefix = session.execute(
            select(ApiKey.prefix).where(ApiKey.tenant_id == tenant.id)
        ).scalar_one()
    assert secret.startswith(prefix)
    assert runner.invoke(app, ["keys", "revoke", prefix]).exit_code == 0
    assert runner.invoke(app, ["keys", "revoke", "tdm_missing"]).exit_code == 2

    assert runner.invoke(app, ["ledger", "verify"]).exit_code == 0
    with unit_of_work() as session:
        session.execute(update(Budget).where(Budget.tenant_id == tenant.id).values(spent=1))
    try:
        broken = runner.invoke(app, ["ledger", "verify"])
        assert broken.exit_code == 1 and "sum of settled" in broken.output
    finally:
        with unit_of_work() as session:
            session.execute(update(Budget).where(Budget.tenant_id == tenant.id).values(spent=0))
    assert runner.invoke(app, ["ledger", "verify"]).exit_code == 0
