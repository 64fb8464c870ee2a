"""prioritised-screening sessions: records and the labels given, in order

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ranking_sessions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("records", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_ranking_sessions_expires_at", "ranking_sessions", ["expires_at"])
    op.create_table(
        "ranking_labels",
        sa.Column("session_id", sa.String(36), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("record", sa.Integer(), nullable=False),
        sa.Column("label", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ranking_labels")
    op.drop_index("ix_ranking_sessions_expires_at", "ranking_sessions")
    op.drop_table("ranking_sessions")
