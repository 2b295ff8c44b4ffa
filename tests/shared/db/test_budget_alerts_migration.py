"""The budget alerts migration carries the soft alerts already sent across, both ways, so no
period alerts twice because of the upgrade."""

from __future__ import annotations

import uuid

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from tandem.commands.db import alembic_config
from tandem.stack.infra import InfraConfig, ensure_database

MIGRATION_DB = "tandem_budget_alerts_migration_test"
REVISION = "b5e2a1c47d90"


def test_sent_soft_alerts_become_alert_rows_and_back(infra: InfraConfig) -> None:
    ensure_database(infra, MIGRATION_DB, recreate=True)
    url = infra.database_url(MIGRATION_DB)
    config = alembic_config(url)
    before = ScriptDirectory.from_config(config).get_revision(REVISION).down_revision
    assert isinstance(before, str)
    engine = create_engine(url)
    tenant, alerted, quiet = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    try:
        command.upgrade(config, before)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO tenants (id, name, budget_cap, soft_alert_ratio, webhook_secret)"
                    " VALUES (:id, 'migrated', 10, 0.7, 's')"
                ),
                {"id": tenant},
            )
            conn.execute(
                text(
                    "INSERT INTO budgets (id, tenant_id, period_key, cap, spent, alert_sent_at)"
                    " VALUES (:a, :t, '2026-11', 10, 8, '2026-11-20T10:00:00Z'),"
                    "        (:q, :t, '2026-12', 10, 1, NULL)"
                ),
                {"a": alerted, "q": quiet, "t": tenant},
            )
        command.upgrade(config, REVISION)
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT budget_id, threshold, ratio, spent FROM budget_alerts")
            ).all()
        assert [(r[0], r[1], float(r[2]), float(r[3])) for r in rows] == [
            (alerted, "soft", 0.7, 8.0)
        ]

        command.downgrade(config, before)
        with engine.connect() as conn:
            sent = conn.execute(text("SELECT id, alert_sent_at IS NOT NULL FROM budgets")).all()
        assert {(row[0], row[1]) for row in sent} == {(alerted, True), (quiet, False)}
    finally:
        engine.dispose()
