"""job request hash: an idempotent replay must be the same request

Revision ID: a7c3e1d05b92
Revises: fbba38768365
Create Date: 2026-12-02 10:15:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a7c3e1d05b92"
down_revision: str | None = "fbba38768365"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("request_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "request_hash")
