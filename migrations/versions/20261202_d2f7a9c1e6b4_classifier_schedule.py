"""classifier schedule: a version carries its level schedule and its stop rule

Revision ID: d2f7a9c1e6b4
Revises: d6a1f0c3b8e2
Create Date: 2026-12-02 13:30:00+00:00

``classifier_models.levels`` is the insight-token schedule the version was calibrated on (its
thresholds are matched to it by budget); NULL for versions registered before this revision,
which keep matching thresholds to a job's levels by position. ``stop_rule`` is the rule the
scorer serves with it (``{"kind": "threshold"}``, the paper's, for every existing row).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "d2f7a9c1e6b4"
down_revision: str | None = "d6a1f0c3b8e2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "classifier_models",
        sa.Column("levels", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column(
        "classifier_models",
        sa.Column(
            "stop_rule",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text('\'{"kind": "threshold"}\'::jsonb'),
            nullable=False,
        ),
    )


def downgrade() -> None:
    op.drop_column("classifier_models", "stop_rule")
    op.drop_column("classifier_models", "levels")
