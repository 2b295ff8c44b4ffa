"""shadow runs: a job's coordinator-alone twin, charged to the operator

Revision ID: d6a1f0c3b8e2
Revises: b5e2a1c47d90
Create Date: 2026-12-02 13:10:00+00:00

``jobs.shadow_of`` links a shadow run to the tenant's job it measures (at most one each), with
that job's tenant and settled cost copied beside it for the savings report's two partial
indexes. The reports leave shadow runs out of every job figure, so ``shadow_of`` joins the
columns their range-scan indexes carry: those four indexes are rebuilt with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d6a1f0c3b8e2"
down_revision: str | None = "b5e2a1c47d90"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out, not imported: a migration must not change when the models do.
REPORT_COLUMNS = [
    "status",
    "domain",
    "policy",
    "cost",
    "finished_at",
    "truncation_level",
    "termination_reason",
]


def _report_indexes(include: list[str]) -> None:
    op.create_index(
        "ix_jobs_tenant_created",
        "jobs",
        ["tenant_id", "created_at", "id"],
        unique=False,
        postgresql_include=include,
    )
    op.create_index(
        "ix_jobs_created", "jobs", ["created_at"], unique=False, postgresql_include=include
    )
    op.create_index(
        "ix_jobs_unrolled",
        "jobs",
        ["created_at"],
        unique=False,
        postgresql_include=["tenant_id", *include],
        postgresql_where=sa.text("NOT rolled_up"),
    )
    op.create_index(
        "ix_jobs_unrolled_tenant",
        "jobs",
        ["tenant_id", "created_at"],
        unique=False,
        postgresql_include=include,
        postgresql_where=sa.text("NOT rolled_up"),
    )


def _drop_report_indexes() -> None:
    for name in (
        "ix_jobs_tenant_created",
        "ix_jobs_created",
        "ix_jobs_unrolled",
        "ix_jobs_unrolled_tenant",
    ):
        op.drop_index(name, table_name="jobs")


SHADOW_COLUMNS = ["domain", "status", "cost", "shadow_of_tenant_id", "shadow_of_cost"]


def upgrade() -> None:
    op.add_column("jobs", sa.Column("shadow_of", sa.Uuid(), nullable=True))
    op.add_column("jobs", sa.Column("shadow_of_tenant_id", sa.Uuid(), nullable=True))
    op.add_column("jobs", sa.Column("shadow_of_cost", sa.Numeric(24, 12), nullable=True))
    op.create_foreign_key(
        op.f("fk_jobs_shadow_of_jobs"), "jobs", "jobs", ["shadow_of"], ["id"], ondelete="SET NULL"
    )
    op.create_foreign_key(
        op.f("fk_jobs_shadow_of_tenant_id_tenants"),
        "jobs",
        "tenants",
        ["shadow_of_tenant_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_index(
        "ix_jobs_shadow_of",
        "jobs",
        ["shadow_of"],
        unique=True,
        postgresql_where=sa.text("shadow_of IS NOT NULL"),
    )
    op.create_index(
        "ix_jobs_shadows",
        "jobs",
        ["created_at"],
        unique=False,
        postgresql_include=SHADOW_COLUMNS,
        postgresql_where=sa.text("shadow_of IS NOT NULL"),
    )
    op.create_index(
        "ix_jobs_shadows_tenant",
        "jobs",
        ["shadow_of_tenant_id", "created_at"],
        unique=False,
        postgresql_include=SHADOW_COLUMNS,
        postgresql_where=sa.text("shadow_of IS NOT NULL"),
    )
    _drop_report_indexes()
    _report_indexes([*REPORT_COLUMNS, "shadow_of"])


def downgrade() -> None:
    _drop_report_indexes()
    _report_indexes(REPORT_COLUMNS)
    op.drop_index("ix_jobs_shadows_tenant", table_name="jobs")
    op.drop_index("ix_jobs_shadows", table_name="jobs")
    op.drop_index("ix_jobs_shadow_of", table_name="jobs")
    op.drop_constraint(op.f("fk_jobs_shadow_of_tenant_id_tenants"), "jobs", type_="foreignkey")
    op.drop_constraint(op.f("fk_jobs_shadow_of_jobs"), "jobs", type_="foreignkey")
    op.drop_column("jobs", "shadow_of_cost")
    op.drop_column("jobs", "shadow_of_tenant_id")
    op.drop_column("jobs", "shadow_of")
