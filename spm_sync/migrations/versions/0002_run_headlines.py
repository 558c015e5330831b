"""Run headlines: the headline figures of a run's result in a column of their own.

The report's trend and "change since last run" read the headlines of the past runs; with
them inside the result documents (tens of megabytes each for a large portfolio) that meant
parsing every document. Existing runs get their headline copied out of the stored result by
the database itself, so the upgrade never loads a document into Python.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL = {
    # `result` is `json` on PostgreSQL; a document without a headline object keeps NULL.
    "postgresql": (
        "UPDATE runs SET headline = result -> 'headline' "
        "WHERE result IS NOT NULL AND json_typeof(result -> 'headline') = 'object'"
    ),
    # JSON text on SQLite (the JSON functions are built in since SQLite 3.38, an option that
    # common builds enabled before); CASE keeps json_type away from a malformed document.
    "sqlite": (
        "UPDATE runs SET headline = json_extract(result, '$.headline') "
        "WHERE CASE WHEN json_valid(result) "
        "THEN json_type(result, '$.headline') = 'object' ELSE 0 END"
    ),
}


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("headline", sa.JSON(), nullable=True))
    op.execute(BACKFILL[op.get_bind().dialect.name])


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("headline")
