"""model prices: a price table with history; jobs snapshot their prices; cached prompt tokens

Revision ID: c4e9a2d7b315
Revises: c4e8a2b7d913
Create Date: 2026-12-02 13:00:00+00:00

``model_prices`` holds each model's prices per million tokens from a time on (rows are only
added). Jobs keep the prices they were admitted under (``jobs.prices``; NULL for the jobs
admitted before this revision, whose calls are priced from the environment as before), and
model calls the prompt tokens the engine served from its prefix cache. The table starts
empty: ``tandem db upgrade`` and the API's start seed it from the environment's prices.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "c4e9a2d7b315"
down_revision: str | None = "c4e8a2b7d913"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(24, 12)


def upgrade() -> None:
    op.create_table(
        "model_prices",
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("prompt_per_mtok", MONEY, nullable=False),
        sa.Column("generated_per_mtok", MONEY, nullable=False),
        sa.Column("cached_prompt_per_mtok", MONEY, nullable=False),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "prompt_per_mtok >= 0 AND generated_per_mtok >= 0 AND cached_prompt_per_mtok >= 0",
            name=op.f("ck_model_prices_prices_nonnegative"),
        ),
        sa.CheckConstraint(
            "cached_prompt_per_mtok <= prompt_per_mtok",
            name=op.f("ck_model_prices_cached_not_above_prompt"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_prices")),
        sa.UniqueConstraint(
            "model", "effective_from", name=op.f("uq_model_prices_model_effective_from")
        ),
    )
    op.add_column(
        "jobs", sa.Column("prices", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    op.add_column(
        "model_calls",
        sa.Column("cached_tokens", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("model_calls", "cached_tokens")
    op.drop_column("jobs", "prices")
    op.drop_table("model_prices")
