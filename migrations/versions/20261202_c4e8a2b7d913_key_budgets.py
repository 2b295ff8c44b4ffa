"""key budgets: per-key cap, period, expiry and rate; jobs record their key; usage per key

Revision ID: c4e8a2b7d913
Revises: 47305fc37241
Create Date: 2026-12-02 13:00:00+00:00

An API key may carry its own budget cap (per period), an expiry and a requests-per-minute limit.
A key's spend lives in ``key_budgets``, one row per key and period (cap NULL: uncapped). Every
job records the key that submitted it (``api_key_id``, NULL for older jobs) and its key budget
row (``key_budget_id``). ``key_usage_hourly`` / ``key_usage_daily`` roll usage up per key; they
start empty (older jobs have no key).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c4e8a2b7d913"
down_revision: str | None = "47305fc37241"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(precision=24, scale=12)
USAGE_METRICS = ["calls", "prompt_tokens", "generated_tokens", "flops", "cost"]


def _key_usage(table: str, period: str) -> None:
    op.create_table(
        table,
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "tenant_id",
            sa.Uuid(),
            sa.ForeignKey("tenants.id", name=f"fk_{table}_tenant_id_tenants", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column(period, sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "api_key_id",
            sa.Uuid(),
            sa.ForeignKey(
                "api_keys.id", name=f"fk_{table}_api_key_id_api_keys", ondelete="CASCADE"
            ),
            nullable=True,
        ),
        sa.Column("calls", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("generated_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("flops", sa.Numeric(precision=38, scale=0), server_default="0", nullable=False),
        sa.Column("cost", MONEY, server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
        sa.UniqueConstraint(
            "tenant_id",
            period,
            "api_key_id",
            name=f"uq_{table}_key",
            postgresql_nulls_not_distinct=True,
            postgresql_include=USAGE_METRICS,
        ),
    )
    op.create_index(f"ix_{table}_key", table, ["api_key_id", period], postgresql_include=["cost"])


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("budget_cap", MONEY, nullable=True))
    op.add_column("api_keys", sa.Column("budget_period", sa.String(length=16), nullable=True))
    op.add_column("api_keys", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("api_keys", sa.Column("rate_limit_rpm", sa.Integer(), nullable=True))
    op.create_check_constraint("ck_api_keys_key_cap_nonnegative", "api_keys", "budget_cap >= 0")
    op.create_check_constraint(
        "ck_api_keys_key_period_kind",
        "api_keys",
        "budget_period IN ('monthly', 'daily', 'total')",
    )
    op.create_table(
        "key_budgets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("api_key_id", sa.Uuid(), nullable=False),
        sa.Column("period_key", sa.String(length=16), nullable=False),
        sa.Column("cap", MONEY, nullable=True),
        sa.Column("spent", MONEY, server_default="0", nullable=False),
        sa.Column("reserved", MONEY, server_default="0", nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("spent >= 0", name="ck_key_budgets_key_spent_nonnegative"),
        sa.CheckConstraint("reserved >= 0", name="ck_key_budgets_key_reserved_nonnegative"),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name="fk_key_budgets_api_key_id_api_keys",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_key_budgets"),
        sa.UniqueConstraint(
            "api_key_id", "period_key", name="uq_key_budgets_api_key_id_period_key"
        ),
    )
    op.add_column("jobs", sa.Column("api_key_id", sa.Uuid(), nullable=True))
    op.add_column("jobs", sa.Column("key_budget_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        "fk_jobs_api_key_id_api_keys",
        "jobs",
        "api_keys",
        ["api_key_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_foreign_key(
        "fk_jobs_key_budget_id_key_budgets", "jobs", "key_budgets", ["key_budget_id"], ["id"]
    )
    _key_usage("key_usage_hourly", "hour")
    _key_usage("key_usage_daily", "day")


def downgrade() -> None:
    op.drop_table("key_usage_daily")
    op.drop_table("key_usage_hourly")
    op.drop_constraint("fk_jobs_key_budget_id_key_budgets", "jobs", type_="foreignkey")
    op.drop_constraint("fk_jobs_api_key_id_api_keys", "jobs", type_="foreignkey")
    op.drop_column("jobs", "key_budget_id")
    op.drop_column("jobs", "api_key_id")
    op.drop_table("key_budgets")
    op.drop_constraint("ck_api_keys_key_period_kind", "api_keys", type_="check")
    op.drop_constraint("ck_api_keys_key_cap_nonnegative", "api_keys", type_="check")
    op.drop_column("api_keys", "rate_limit_rpm")
    op.drop_column("api_keys", "expires_at")
    op.drop_column("api_keys", "budget_period")
    op.drop_column("api_keys", "budget_cap")
