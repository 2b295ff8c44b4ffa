"""report rollups: daily levels, all-tenants rows, usage totals, job outcomes, latency histogram

Revision ID: 47305fc37241
Revises: a7c3e1d05b92
Create Date: 2026-12-02 09:55:00+00:00

The usage and score roll-ups gain an all-tenants row (tenant_id NULL) and a daily level; usage
totals per tenant, job outcomes and succeeded jobs' latency get roll-ups of their own; jobs get the ``rolled_up``
marker. The new rows are built from the data already there: a job counts as rolled up when the
old code had added it (its settlement is in the ledger, or it succeeded without a budget).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.sql.schema import SchemaItem

revision: str = "47305fc37241"
down_revision: str | None = "a7c3e1d05b92"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out, not imported: a migration must not change when the models do.
JOB_REPORT_COLUMNS = [
    "status",
    "domain",
    "policy",
    "cost",
    "finished_at",
    "truncation_level",
    "termination_reason",
]
USAGE_KEYS = ["model", "role", "domain", "policy"]
USAGE_METRICS = ["calls", "prompt_tokens", "generated_tokens", "flops", "cost"]
OUTCOME_KEYS = ["domain", "policy", "status", "truncation_level", "termination_reason"]
SCORE_KEYS = ["domain", "policy", "bucket"]
# shared.rollups.buckets.latency_bucket at this revision: 16 buckets per doubling of the ms.
LATENCY_BUCKET = (
    "CASE WHEN EXTRACT(EPOCH FROM j.finished_at - j.created_at)::float8 * 1000 < 1 THEN 0 "
    "ELSE 1 + floor(ln(EXTRACT(EPOCH FROM j.finished_at - j.created_at)::float8 * 1000) * 16"
    " / ln(2::float8))::int END"
)


def _tenant(table: str) -> sa.Column[Any]:
    return sa.Column(
        "tenant_id",
        sa.Uuid(),
        sa.ForeignKey("tenants.id", name=f"fk_{table}_tenant_id_tenants", ondelete="CASCADE"),
        nullable=True,
    )


def _key(table: str, period: str, keys: list[str], include: list[str]) -> sa.UniqueConstraint:
    return sa.UniqueConstraint(
        "tenant_id",
        period,
        *keys,
        name=f"uq_{table}_key",
        postgresql_nulls_not_distinct=True,
        postgresql_include=include,
    )


def _rollup(
    table: str,
    period: str,
    columns: list[sa.Column[Any]],
    key: list[str],
    include: list[str],
    *extra: SchemaItem,
) -> None:
    op.create_table(
        table,
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        _tenant(table),
        sa.Column(period, sa.DateTime(timezone=True), nullable=False),
        *columns,
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
        _key(table, period, key, include),
        *extra,
    )


def _usage_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("domain", sa.String(length=16), nullable=False),
        sa.Column("policy", sa.String(length=16), nullable=False),
        *_usage_metric_columns(),
    ]


def _usage_metric_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("calls", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("generated_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("flops", sa.Numeric(precision=38, scale=0), server_default="0", nullable=False),
        sa.Column("cost", sa.Numeric(precision=24, scale=12), server_default="0", nullable=False),
    ]


def _outcome_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("domain", sa.String(length=16), nullable=False),
        sa.Column("policy", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("truncation_level", sa.Integer(), nullable=True),
        sa.Column("termination_reason", sa.String(length=32), nullable=True),
        sa.Column("jobs", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cost", sa.Numeric(precision=24, scale=12), server_default="0", nullable=False),
    ]


def _latency_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("bucket", sa.SmallInteger(), nullable=False),
        sa.Column("jobs", sa.BigInteger(), server_default="0", nullable=False),
    ]


def _score_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("domain", sa.String(length=16), nullable=False),
        sa.Column("policy", sa.String(length=16), nullable=False),
        sa.Column("bucket", sa.SmallInteger(), nullable=False),
        sa.Column("checkpoints", sa.BigInteger(), server_default="0", nullable=False),
    ]


def _add_unique(table: str, name: str, keys: list[str], include: list[str], nulls: str) -> None:
    # op.create_unique_constraint cannot name INCLUDE columns.
    op.execute(
        f"ALTER TABLE {table} ADD CONSTRAINT {name} UNIQUE {nulls}"
        f"(tenant_id, hour, {', '.join(keys)}) INCLUDE ({', '.join(include)})"
    )


def upgrade() -> None:
    op.add_column(
        "jobs",
        sa.Column("rolled_up", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.execute(
        """
        UPDATE jobs SET rolled_up = true
        WHERE status IN ('succeeded', 'failed', 'cancelled', 'rejected')
          AND (EXISTS (SELECT 1 FROM ledger_entries AS l
                       WHERE l.job_id = jobs.id AND l.kind = 'settle')
               OR (budget_id IS NULL AND status = 'succeeded'))
        """
    )
    op.create_index(
        "ix_jobs_unrolled",
        "jobs",
        ["created_at"],
        unique=False,
        postgresql_include=["tenant_id", *JOB_REPORT_COLUMNS],
        postgresql_where=sa.text("NOT rolled_up"),
    )
    op.create_index(
        "ix_jobs_unrolled_tenant",
        "jobs",
        ["tenant_id", "created_at"],
        unique=False,
        postgresql_include=JOB_REPORT_COLUMNS,
        postgresql_where=sa.text("NOT rolled_up"),
    )

    # The existing hourly roll-ups: NULL tenant is the all-tenants row.
    for table, keys, include in (
        ("usage_hourly", USAGE_KEYS, USAGE_METRICS),
        ("score_hourly", SCORE_KEYS, ["checkpoints"]),
    ):
        old = "_".join(["uq", table, "tenant_id", "hour", *keys])
        op.drop_constraint(old, table, type_="unique")
        op.alter_column(table, "tenant_id", existing_type=sa.Uuid(), nullable=True)
        _add_unique(table, f"uq_{table}_key", keys, include, "NULLS NOT DISTINCT ")
    op.drop_index("ix_usage_hourly_hour", table_name="usage_hourly")
    op.create_index(
        "ix_usage_hourly_hour",
        "usage_hourly",
        ["hour"],
        unique=False,
        postgresql_include=["tenant_id", *USAGE_KEYS, *USAGE_METRICS],
        postgresql_where=sa.text("tenant_id IS NOT NULL"),
    )
    op.drop_index("ix_score_hourly_hour", table_name="score_hourly")

    _rollup(
        "usage_daily",
        "day",
        _usage_columns(),
        USAGE_KEYS,
        USAGE_METRICS,
    )
    op.create_index(
        "ix_usage_daily_day",
        "usage_daily",
        ["day"],
        unique=False,
        postgresql_include=["tenant_id", *USAGE_KEYS, *USAGE_METRICS],
        postgresql_where=sa.text("tenant_id IS NOT NULL"),
    )
    for table, period in (("usage_total_hourly", "hour"), ("usage_total_daily", "day")):
        _rollup(table, period, _usage_metric_columns(), [], USAGE_METRICS)
        op.create_index(
            f"ix_{table}_{period}",
            table,
            [period],
            unique=False,
            postgresql_include=["tenant_id", *USAGE_METRICS],
            postgresql_where=sa.text("tenant_id IS NOT NULL"),
        )
    for table, period in (("outcome_hourly", "hour"), ("outcome_daily", "day")):
        _rollup(table, period, _outcome_columns(), OUTCOME_KEYS, ["jobs", "cost"])
    for table, period in (("latency_hourly", "hour"), ("latency_daily", "day")):
        _rollup(table, period, _latency_columns(), ["bucket"], ["jobs"])
    _rollup(
        "score_daily",
        "day",
        _score_columns(),
        SCORE_KEYS,
        ["checkpoints"],
        sa.CheckConstraint("bucket BETWEEN 0 AND 9", name="ck_score_daily_bucket_range"),
    )
    _backfill()


def _backfill() -> None:
    usage = ", ".join(USAGE_KEYS)
    sums = ", ".join(f"sum({m})" for m in USAGE_METRICS)
    metrics = ", ".join(USAGE_METRICS)
    op.execute(
        f"INSERT INTO usage_hourly (tenant_id, hour, {usage}, {metrics}) "  # noqa: S608 - constants
        f"SELECT NULL, hour, {usage}, {sums} FROM usage_hourly GROUP BY hour, {usage}"
    )
    op.execute(
        f"INSERT INTO usage_daily (tenant_id, day, {usage}, {metrics}) "  # noqa: S608 - constants
        f"SELECT tenant_id, date_trunc('day', hour, 'UTC'), {usage}, {sums} FROM usage_hourly "
        f"GROUP BY tenant_id, date_trunc('day', hour, 'UTC'), {usage}"
    )
    for table, period in (("usage_total_hourly", "hour"), ("usage_total_daily", "day")):
        op.execute(
            f"INSERT INTO {table} (tenant_id, {period}, {metrics}) "  # noqa: S608 - constants
            f"SELECT tenant_id, date_trunc('{period}', hour, 'UTC'), {sums} FROM usage_hourly "
            f"GROUP BY tenant_id, date_trunc('{period}', hour, 'UTC')"
        )
    op.execute(
        "INSERT INTO score_hourly (tenant_id, hour, domain, policy, bucket, checkpoints) "
        "SELECT NULL, hour, domain, policy, bucket, sum(checkpoints) FROM score_hourly "
        "GROUP BY hour, domain, policy, bucket"
    )
    op.execute(
        "INSERT INTO score_daily (tenant_id, day, domain, policy, bucket, checkpoints) "
        "SELECT tenant_id, date_trunc('day', hour, 'UTC'), domain, policy, bucket, "
        "sum(checkpoints) FROM score_hourly "
        "GROUP BY tenant_id, date_trunc('day', hour, 'UTC'), domain, policy, bucket"
    )
    outcome = ", ".join(OUTCOME_KEYS)
    for table, period in (("outcome_hourly", "hour"), ("outcome_daily", "day")):
        op.execute(
            f"INSERT INTO {table} (tenant_id, {period}, {outcome}, jobs, cost) "  # noqa: S608 - constants
            f"SELECT s.tenant_id, date_trunc('{period}', j.created_at, 'UTC'), "
            f"{', '.join('j.' + k for k in OUTCOME_KEYS)}, count(*), sum(j.cost) "
            "FROM jobs AS j CROSS JOIN LATERAL (VALUES (j.tenant_id), (NULL::uuid)) AS s(tenant_id) "
            "WHERE j.rolled_up GROUP BY 1, 2, 3, 4, 5, 6, 7"
        )
    for table, period in (("latency_hourly", "hour"), ("latency_daily", "day")):
        op.execute(
            f"INSERT INTO {table} (tenant_id, {period}, bucket, jobs) "  # noqa: S608 - constants
            f"SELECT s.tenant_id, date_trunc('{period}', j.created_at, 'UTC'), "
            f"{LATENCY_BUCKET}, count(*) "
            "FROM jobs AS j CROSS JOIN LATERAL (VALUES (j.tenant_id), (NULL::uuid)) AS s(tenant_id) "
            "WHERE j.rolled_up AND j.status = 'succeeded' AND j.finished_at IS NOT NULL "
            "GROUP BY 1, 2, 3"
        )


def downgrade() -> None:
    for table in (
        "usage_total_daily",
        "usage_total_hourly",
        "score_daily",
        "latency_daily",
        "latency_hourly",
        "outcome_daily",
        "outcome_hourly",
    ):
        op.drop_table(table)
    op.drop_index("ix_usage_daily_day", table_name="usage_daily")
    op.drop_table("usage_daily")
    op.execute("DELETE FROM usage_hourly WHERE tenant_id IS NULL")
    op.execute("DELETE FROM score_hourly WHERE tenant_id IS NULL")
    op.drop_index("ix_usage_hourly_hour", table_name="usage_hourly")
    op.create_index(
        "ix_usage_hourly_hour",
        "usage_hourly",
        ["hour"],
        unique=False,
        postgresql_include=["tenant_id", *USAGE_KEYS, *USAGE_METRICS],
    )
    op.create_index(
        "ix_score_hourly_hour",
        "score_hourly",
        ["hour"],
        unique=False,
        postgresql_include=["tenant_id", *SCORE_KEYS, "checkpoints"],
    )
    for table, keys, include in (
        ("usage_hourly", USAGE_KEYS, USAGE_METRICS),
        ("score_hourly", SCORE_KEYS, ["checkpoints"]),
    ):
        op.drop_constraint(f"uq_{table}_key", table, type_="unique")
        op.alter_column(table, "tenant_id", existing_type=sa.Uuid(), nullable=False)
        _add_unique(table, "_".join(["uq", table, "tenant_id", "hour", *keys]), keys, include, "")
    op.drop_index("ix_jobs_unrolled_tenant", table_name="jobs")
    op.drop_index("ix_jobs_unrolled", table_name="jobs")
    op.drop_column("jobs", "rolled_up")
