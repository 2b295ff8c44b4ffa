"""jobs.stream_answer: the executor publishes its text as it is generated

Revision ID: e3b7c5a9d104
Revises: d2f7a9c1e6b4
Create Date: 2026-12-02 16:30:00+00:00

Set at admission when someone follows the answer live (a streamed chat completion, or a job
submitted with ``stream_answer``); the executor then streams its engine call and publishes the
text to the job's answer stream in Redis. False for every job admitted before.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e3b7c5a9d104"
down_revision: str | None = "d2f7a9c1e6b4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A constant default: Postgres adds the column without rewriting the table.
    op.add_column(
        "jobs",
        sa.Column("stream_answer", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("jobs", "stream_answer")
