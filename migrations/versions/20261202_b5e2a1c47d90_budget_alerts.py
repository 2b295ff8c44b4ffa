"""budget alerts: soft and hard thresholds of tenant and key budgets, tenant alert URL, alert
webhooks in the outbox

Revision ID: b5e2a1c47d90
Revises: c4e9a2d7b315
Create Date: 2026-12-02 12:50:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b5e2a1c47d90"
down_revision: str | None = "c4e9a2d7b315"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(24, 12)


def upgrade() -> None:
    op.add_column(
        "tenants",
        sa.Column("hard_alert_ratio", MONEY, server_default=sa.text("1"), nullable=False),
    )
    op.add_column("tenants", sa.Column("alert_url", sa.String(length=2048), nullable=True))
    op.add_column("api_keys", sa.Column("soft_alert_ratio", MONEY, nullable=True))
    op.add_column("api_keys", sa.Column("hard_alert_ratio", MONEY, nullable=True))
    op.create_table(
        "budget_alerts",
        sa.Column("budget_id", sa.Uuid(), nullable=True),
        sa.Column("key_budget_id", sa.Uuid(), nullable=True),
        sa.Column("api_key_id", sa.Uuid(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("period_key", sa.String(length=16), nullable=False),
        sa.Column("threshold", sa.String(length=8), nullable=False),
        sa.Column("ratio", MONEY, nullable=False),
        sa.Column("cap", MONEY, nullable=False),
        sa.Column("spent", MONEY, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "num_nonnulls(budget_id, key_budget_id) = 1", name=op.f("ck_budget_alerts_one_budget")
        ),
        sa.CheckConstraint(
            "threshold IN ('soft', 'hard')", name=op.f("ck_budget_alerts_threshold_known")
        ),
        sa.ForeignKeyConstraint(
            ["key_budget_id"],
            ["key_budgets.id"],
            name=op.f("fk_budget_alerts_key_budget_id_key_budgets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name=op.f("fk_budget_alerts_api_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["budget_id"],
            ["budgets.id"],
            name=op.f("fk_budget_alerts_budget_id_budgets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_budget_alerts_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_budget_alerts_job_id_jobs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_alerts")),
        sa.UniqueConstraint(
            "budget_id", "threshold", name=op.f("uq_budget_alerts_budget_id_threshold")
        ),
        sa.UniqueConstraint(
            "key_budget_id", "threshold", name=op.f("uq_budget_alerts_key_budget_id_threshold")
        ),
    )
    op.create_index("ix_budget_alerts_tenant_created", "budget_alerts", ["tenant_id", "created_at"])
    op.create_index("ix_budget_alerts_created", "budget_alerts", ["created_at"])
    # The soft alerts already sent become rows, so no period alerts twice across the upgrade.
    op.execute(
        """
        INSERT INTO budget_alerts (id, budget_id, tenant_id, period_key, threshold, ratio, cap,
                                   spent, created_at)
        SELECT gen_random_uuid(), b.id, b.tenant_id, b.period_key, 'soft', t.soft_alert_ratio,
               b.cap, b.spent, b.alert_sent_at
        FROM budgets b JOIN tenants t ON t.id = b.tenant_id
        WHERE b.alert_sent_at IS NOT NULL
        """
    )
    op.drop_column("budgets", "alert_sent_at")

    op.alter_column("webhook_deliveries", "job_id", existing_type=sa.Uuid(), nullable=True)
    op.add_column("webhook_deliveries", sa.Column("alert_id", sa.Uuid(), nullable=True))
    op.add_column(
        "webhook_deliveries",
        sa.Column(
            "recipient", sa.String(length=16), server_default=sa.text("'tenant'"), nullable=False
        ),
    )
    op.create_foreign_key(
        op.f("fk_webhook_deliveries_alert_id_budget_alerts"),
        "webhook_deliveries",
        "budget_alerts",
        ["alert_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.create_unique_constraint(
        op.f("uq_webhook_deliveries_alert_id_recipient"),
        "webhook_deliveries",
        ["alert_id", "recipient"],
    )
    op.create_check_constraint(
        op.f("ck_webhook_deliveries_one_subject"),
        "webhook_deliveries",
        "num_nonnulls(job_id, alert_id) = 1",
    )
    op.create_check_constraint(
        op.f("ck_webhook_deliveries_recipient_known"),
        "webhook_deliveries",
        "recipient IN ('tenant', 'operator')",
    )


def downgrade() -> None:
    op.execute("DELETE FROM webhook_deliveries WHERE alert_id IS NOT NULL")
    op.drop_constraint(
        op.f("ck_webhook_deliveries_recipient_known"), "webhook_deliveries", type_="check"
    )
    op.drop_constraint(
        op.f("ck_webhook_deliveries_one_subject"), "webhook_deliveries", type_="check"
    )
    op.drop_constraint(
        op.f("uq_webhook_deliveries_alert_id_recipient"), "webhook_deliveries", type_="unique"
    )
    op.drop_constraint(
        op.f("fk_webhook_deliveries_alert_id_budget_alerts"),
        "webhook_deliveries",
        type_="foreignkey",
    )
    op.drop_column("webhook_deliveries", "recipient")
    op.drop_column("webhook_deliveries", "alert_id")
    op.alter_column("webhook_deliveries", "job_id", existing_type=sa.Uuid(), nullable=False)

    op.add_column("budgets", sa.Column("alert_sent_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        """
        UPDATE budgets b SET alert_sent_at = a.created_at
        FROM budget_alerts a WHERE a.budget_id = b.id AND a.threshold = 'soft'
        """
    )
    op.drop_index("ix_budget_alerts_created", table_name="budget_alerts")
    op.drop_index("ix_budget_alerts_tenant_created", table_name="budget_alerts")
    op.drop_table("budget_alerts")
    op.drop_column("api_keys", "hard_alert_ratio")
    op.drop_column("api_keys", "soft_alert_ratio")
    op.drop_column("tenants", "alert_url")
    op.drop_column("tenants", "hard_alert_ratio")
