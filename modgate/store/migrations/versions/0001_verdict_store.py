"""The verdict store: verdicts, the policies they were decided under, in-flight claims.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "verdicts",
        sa.Column("verdict_id", sa.String(32), primary_key=True),
        sa.Column("caller", sa.String(128), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("request_digest", sa.String(64), nullable=False),
        sa.Column("content_id", sa.String(256), nullable=False, server_default=""),
        sa.Column("received_at", sa.Float(53), nullable=False),
        sa.Column("decided_at", sa.Float(53), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("risk", sa.Float(), nullable=False),
        sa.Column("degraded", sa.Boolean(), nullable=False),
        sa.Column("policy_name", sa.String(64), nullable=False),
        sa.Column("policy_version", sa.String(64), nullable=False),
        sa.Column("policy_digest", sa.String(64), nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False, server_default=""),
        sa.Column("models", Json, nullable=False),
        sa.Column("fusion", sa.LargeBinary(), nullable=False),
        sa.Column("verdict", sa.LargeBinary(), nullable=False),
        sa.UniqueConstraint("caller", "request_id", name="uq_verdicts_caller_request"),
    )
    op.create_index("ix_verdicts_decided_at", "verdicts", ["decided_at"])
    op.create_index("ix_verdicts_content_id", "verdicts", ["content_id"])
    op.create_index("ix_verdicts_decision_decided_at", "verdicts", ["decision", "decided_at"])
    op.create_table(
        "policies",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("document", Json, nullable=False),
        sa.Column("first_seen", sa.Float(53), nullable=False),
    )
    op.create_table(
        "claims",
        sa.Column("caller", sa.String(128), primary_key=True),
        sa.Column("request_id", sa.String(128), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("request_digest", sa.String(64), nullable=False),
        sa.Column("claimed_at", sa.Float(53), nullable=False),
        sa.Column("expires_at", sa.Float(53), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("claims")
    op.drop_table("policies")
    op.drop_index("ix_verdicts_decision_decided_at", table_name="verdicts")
    op.drop_index("ix_verdicts_content_id", table_name="verdicts")
    op.drop_index("ix_verdicts_decided_at", table_name="verdicts")
    op.drop_table("verdicts")
