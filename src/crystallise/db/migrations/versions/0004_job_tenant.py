"""job owner (tenant): every job belongs to the tenant that created it; existing rows to
'default'; Idempotency-Keys are unique per tenant

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TABLES = {"screening_jobs": "ix_screening_jobs", "indexer_jobs": "ix_indexer_jobs"}


def upgrade() -> None:
    for table, prefix in _TABLES.items():
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("tenant", sa.String(64), nullable=False, server_default="default")
            )
            batch.drop_index(f"{prefix}_idem")
            batch.create_index(f"{prefix}_idem", ["tenant", "idempotency_key"], unique=True)
            batch.create_index(f"{prefix}_tenant", ["tenant", "created_at"])


def downgrade() -> None:
    for table, prefix in _TABLES.items():
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"{prefix}_tenant")
            batch.drop_index(f"{prefix}_idem")
            batch.create_index(f"{prefix}_idem", ["idempotency_key"], unique=True)
            batch.drop_column("tenant")
