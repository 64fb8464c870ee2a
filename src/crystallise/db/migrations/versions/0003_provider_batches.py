"""provider batches (Batch API ids a job started), kept across restarts

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("screening_jobs", "indexer_jobs"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("provider_batches", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in ("screening_jobs", "indexer_jobs"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("provider_batches")
