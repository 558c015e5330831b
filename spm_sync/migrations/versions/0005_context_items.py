"""Context items: work items stored only so that alignment can follow them.

An "open work only" scope leaves out the Done epics and objectives above open stories; without
them a story loses the Key Result it inherits. The pull fetches such ancestors (parents and
the targets of alignment links outside the scope) and stores them with `context` set: they
serve inheritance only and are never counted, reported, scored, ranked or written. Existing
rows are all scope items.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("work_items", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("context", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("work_items", schema=None) as batch_op:
        batch_op.drop_column("context")
