"""encrypted per-request key (held for a job's lifetime only)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("screening_jobs", "indexer_jobs"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("encrypted_openai_key", sa.Text(), nullable=True))


def downgrade() -> None:
    for table in ("screening_jobs", "indexer_jobs"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("encrypted_openai_key")
