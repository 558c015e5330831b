"""Initial store schema: work items, sync state, runs and their stage progress, sync stats,
alignments, orphans, scores, and the audit log of planned and applied writes.

Column types are spelled out (not the application's column classes) so this revision keeps
creating the same schema whatever the models become.

Revision ID: 0001
Revises:
Create Date: 2025-01-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("stage", sa.String(), nullable=True),
        sa.Column("mode", sa.String(), nullable=False),
        sa.Column("trigger", sa.String(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_runs_status"), ["status"], unique=False)

    op.create_table(
        "sync_state",
        sa.Column("connection", sa.String(), nullable=False),
        sa.Column("watermark", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_full_sync", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_deletion_scan", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("connection", name=op.f("pk_sync_state")),
    )
    op.create_table(
        "work_items",
        sa.Column("connection", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("tracker_id", sa.String(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("status_category", sa.String(), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revision", sa.String(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=True),
        sa.Column("parent_key", sa.String(), nullable=True),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("links", sa.JSON(), nullable=False),
        sa.Column("project", sa.String(), nullable=True),
        sa.Column("team", sa.String(), nullable=True),
        sa.Column("components", sa.JSON(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("business_value", sa.Float(), nullable=True),
        sa.Column("time_criticality", sa.Float(), nullable=True),
        sa.Column("risk_reduction", sa.Float(), nullable=True),
        sa.Column("job_size", sa.Float(), nullable=True),
        sa.Column("wsjf_score", sa.Float(), nullable=True),
        sa.Column("cost_of_delay", sa.Float(), nullable=True),
        sa.Column("priority", sa.String(), nullable=True),
        sa.Column("rank", sa.JSON(), nullable=True),
        sa.Column("field_problems", sa.JSON(), nullable=False),
        sa.Column("first_seen_run", sa.Integer(), nullable=True),
        sa.Column("last_seen_run", sa.Integer(), nullable=True),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("connection", "key", name=op.f("pk_work_items")),
    )
    op.create_table(
        "alignments",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("connection", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("kr_id", sa.String(), nullable=False),
        sa.Column("via", sa.String(), nullable=False),
        sa.Column("path", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_alignments_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "connection", "key", "kr_id", name=op.f("pk_alignments")),
    )
    op.create_table(
        "orphans",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("connection", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_orphans_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "connection", "key", name=op.f("pk_orphans")),
    )
    op.create_table(
        "scores",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("connection", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("cost_of_delay", sa.Float(), nullable=True),
        sa.Column("job_size", sa.Float(), nullable=True),
        sa.Column("wsjf", sa.Float(), nullable=True),
        sa.Column("old_rank", sa.JSON(), nullable=True),
        sa.Column("new_rank", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_scores_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "connection", "key", name=op.f("pk_scores")),
    )
    op.create_table(
        "stage_progress",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(), nullable=False),
        sa.Column("connection", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_stage_progress_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "stage", "connection", name=op.f("pk_stage_progress")),
    )
    op.create_table(
        "sync_stats",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("connection", sa.String(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pulled", sa.Integer(), nullable=False),
        sa.Column("marked_deleted", sa.Integer(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("by_endpoint", sa.JSON(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("throttled", sa.Integer(), nullable=False),
        sa.Column("waited_seconds", sa.Float(), nullable=False),
        sa.Column("rate_limit", sa.JSON(), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_sync_stats_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "connection", name=op.f("pk_sync_stats")),
    )
    op.create_table(
        "writes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("connection", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("field", sa.String(), nullable=False),
        sa.Column("old", sa.JSON(), nullable=True),
        sa.Column("new", sa.JSON(), nullable=True),
        sa.Column("expected_revision", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("new_revision", sa.String(), nullable=True),
        sa.Column("move", sa.JSON(), nullable=True),
        sa.Column("move_position", sa.Integer(), nullable=True),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_writes_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_writes")),
        sa.UniqueConstraint(
            "run_id",
            "connection",
            "key",
            "field",
            name=op.f("uq_writes_run_id_connection_key_field"),
        ),
    )
    with op.batch_alter_table("writes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_writes_connection_key"), ["connection", "key"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("writes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_writes_connection_key"))

    op.drop_table("writes")
    op.drop_table("sync_stats")
    op.drop_table("stage_progress")
    op.drop_table("scores")
    op.drop_table("orphans")
    op.drop_table("alignments")
    op.drop_table("work_items")
    op.drop_table("sync_state")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_status"))

    op.drop_table("runs")
