"""job item reuse key: a screened paper's result is found again by the hash of its text and
screening setup (screening/reuse.py)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job_items") as batch:
        batch.add_column(sa.Column("reuse_key", sa.String(64), nullable=True))
        batch.create_index("ix_job_items_reuse", ["reuse_key"])


def downgrade() -> None:
    with op.batch_alter_table("job_items") as batch:
        batch.drop_index("ix_job_items_reuse")
        batch.drop_column("reuse_key")
