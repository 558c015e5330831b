"""Status history: one row per status change of an item, the input of flow metrics.

Unique per item by a fingerprint of the change's content (when, from, to), so a history read
twice is stored once; indexed by item in stored order, so it streams grouped per item.
`sync_state.history_pending_since` remembers, after a history pull that failed, which items'
history is still to be read (those updated since then), for trackers read item by item.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "status_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection", sa.String(), nullable=False),
        sa.Column("item_key", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("from_status", sa.String(), nullable=True),
        sa.Column("to_status", sa.String(), nullable=False),
        sa.Column("to_category", sa.String(), nullable=True),
        sa.Column("fingerprint", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_changes")),
        sa.UniqueConstraint(
            "connection",
            "item_key",
            "fingerprint",
            name=op.f("uq_status_changes_connection_item_key_fingerprint"),
        ),
    )
    with op.batch_alter_table("status_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_status_changes_connection_item_key_id"),
            ["connection", "item_key", "id"],
            unique=False,
        )
    with op.batch_alter_table("sync_state", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("history_pending_since", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("sync_state", schema=None) as batch_op:
        batch_op.drop_column("history_pending_since")
    with op.batch_alter_table("status_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_status_changes_connection_item_key_id"))
    op.drop_table("status_changes")
