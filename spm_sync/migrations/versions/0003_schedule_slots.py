"""Schedule slots: the claim of each scheduled slot by the one `serve` worker that runs it.

Workers used to share APScheduler's own job table, which APScheduler 3 documents as unsafe
(a job store must never be shared between schedulers): two workers could both run one slot.
Each worker now keeps its schedule in memory and claims a slot by inserting its row here;
the primary key lets exactly one insert per slot succeed.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "schedule_slots",
        sa.Column("slot", sa.DateTime(timezone=True), nullable=False),
        sa.Column("schedule", sa.String(), nullable=False),
        sa.Column("worker", sa.String(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("slot", name=op.f("pk_schedule_slots")),
    )


def downgrade() -> None:
    op.drop_table("schedule_slots")
