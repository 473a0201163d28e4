"""Review labels: a reviewer's ALLOW/BLOCK (and category) on a stored verdict.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "labels",
        sa.Column("label_id", sa.String(32), primary_key=True),
        sa.Column("verdict_id", sa.String(32), nullable=False),
        sa.Column("reviewer", sa.String(128), nullable=False),
        sa.Column("labelled_at", sa.Float(53), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("category", sa.String(64), nullable=False, server_default=""),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
    )
    op.create_index("ix_labels_verdict_id", "labels", ["verdict_id"])
    op.create_index("ix_labels_labelled_at", "labels", ["labelled_at"])


def downgrade() -> None:
    op.drop_table("labels")
