"""Review console: leases, the audit trail, evidence-frame thumbnails.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "review_leases",
        sa.Column("verdict_id", sa.String(32), primary_key=True),
        sa.Column("reviewer", sa.String(128), nullable=False),
        sa.Column("claimed_at", sa.Float(53), nullable=False),
        sa.Column("expires_at", sa.Float(53), nullable=False),
    )
    op.create_table(
        "audit",
        sa.Column("audit_id", sa.String(32), primary_key=True),
        sa.Column("at", sa.Float(53), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False, server_default=""),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("verdict_id", sa.String(32), nullable=False, server_default=""),
        sa.Column("detail", Json, nullable=False),
    )
    op.create_index("ix_audit_at", "audit", ["at"])
    op.create_index("ix_audit_verdict_id", "audit", ["verdict_id"])
    op.create_table(
        "thumbnails",
        sa.Column("verdict_id", sa.String(32), primary_key=True),
        sa.Column("frame_index", sa.Integer(), primary_key=True),
        sa.Column("stream_index", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("time_ms", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("jpeg", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("thumbnails")
    op.drop_table("audit")
    op.drop_table("review_leases")
