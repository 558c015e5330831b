"""The tables of the store (SQLModel). The schema itself is created by the Alembic migrations in
`spm_sync/migrations`; a test compares these models with the migrated database so they cannot
drift apart.

Keys: a work item is identified by (connection, key) because keys are unique only within one
tracker connection. Per-run tables (alignments, orphans, scores, writes, sync stats, stage
progress) hang off `runs.id` and go when a run is deleted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Text,
    UniqueConstraint,
    false,
)
from sqlmodel import Field, SQLModel

from spm_sync.store.columns import UtcDateTime, json_column

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
"""Own metadata, so nothing else declared with SQLModel ends up in the migrations."""


class StoreTable(SQLModel):
    metadata = metadata


def _run_fk() -> Any:
    return Field(
        sa_column=Column(
            Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True, nullable=False
        )
    )


def _when(nullable: bool = True) -> Any:
    return Field(default=None, sa_type=UtcDateTime, nullable=nullable)


def _json(nullable: bool = True) -> Any:
    return Field(default=None, sa_type=json_column(), nullable=nullable)


class WorkItemRow(StoreTable, table=True):
    """The latest known state of one tracker item (all `WorkItem` fields)."""

    __tablename__ = "work_items"

    connection: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    tracker_id: str
    type: str
    level: int | None = None
    title: str = Field(sa_type=Text)
    status: str
    status_category: str
    updated: datetime = _when(nullable=False)
    revision: str
    created: datetime | None = _when()
    parent_key: str | None = None
    labels: list[str] = _json(nullable=False)
    links: list[dict[str, str]] = _json(nullable=False)
    project: str | None = None
    team: str | None = None
    components: list[str] = _json(nullable=False)
    url: str | None = Field(default=None, sa_type=Text)
    business_value: float | None = None
    time_criticality: float | None = None
    risk_reduction: float | None = None
    job_size: float | None = None
    wsjf_score: float | None = None
    cost_of_delay: float | None = None
    priority: str | None = None
    rank: str | float | None = _json()
    field_problems: dict[str, str] = _json(nullable=False)
    first_seen_run: int | None = None
    last_seen_run: int | None = None
    stored_at: datetime = _when(nullable=False)
    deleted_at: datetime | None = _when()
    """Set by the deletion scan when the item left the scope; cleared when it is seen again."""
    context: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    """Stored only for alignment to follow (an ancestor or link target outside the scope); see
    `spm_sync.pipeline.context_pull`. Never counted, reported, scored or written."""


class SyncStateRow(StoreTable, table=True):
    __tablename__ = "sync_state"

    connection: str = Field(primary_key=True)
    watermark: datetime | None = _when()
    last_full_sync: datetime | None = _when()
    last_deletion_scan: datetime | None = _when()
    cursor: str | None = Field(default=None, sa_type=Text)
    """Where the next status history pull continues (the connector's `history_cursor`)."""
    updated_at: datetime = _when(nullable=False)
    history_pending_since: datetime | None = _when()
    """Items updated since then still need their status history read (rev 0004)."""


class RunRow(StoreTable, table=True):
    __tablename__ = "runs"
    __table_args__ = (Index(None, "status"),)

    id: int | None = Field(default=None, primary_key=True)
    started: datetime = _when(nullable=False)
    finished: datetime | None = _when()
    status: str
    stage: str | None = None
    mode: str
    trigger: str
    error: str | None = Field(default=None, sa_type=Text)
    result: dict[str, Any] | None = _json()
    """The result document the report is rendered from (`spm_sync.core.results.CycleResult`)."""
    headline: dict[str, Any] | None = _json()
    """Its headline figures alone, so history reads never parse whole documents (rev 0002)."""


class StageProgressRow(StoreTable, table=True):
    """One stage of one run, optionally for one connection (`connection` "" = the whole run)."""

    __tablename__ = "stage_progress"

    run_id: int = _run_fk()
    stage: str = Field(primary_key=True)
    connection: str = Field(primary_key=True, default="")
    status: str
    started_at: datetime = _when(nullable=False)
    finished_at: datetime | None = _when()
    detail: dict[str, Any] | None = _json()


class SyncStatsRow(StoreTable, table=True):
    __tablename__ = "sync_stats"

    run_id: int = _run_fk()
    connection: str = Field(primary_key=True)
    since: datetime | None = _when()
    pulled: int = 0
    marked_deleted: int = 0
    requests: int = 0
    by_endpoint: dict[str, int] = _json(nullable=False)
    retries: int = 0
    throttled: int = 0
    waited_seconds: float = 0.0
    rate_limit: dict[str, str] = _json(nullable=False)
    duration_seconds: float = 0.0
    warnings: list[str] = _json(nullable=False)
    error: str | None = Field(default=None, sa_type=Text)


class AlignmentRow(StoreTable, table=True):
    __tablename__ = "alignments"

    run_id: int = _run_fk()
    connection: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    kr_id: str = Field(primary_key=True)
    via: str
    path: list[str] = _json(nullable=False)


class OrphanRow(StoreTable, table=True):
    __tablename__ = "orphans"

    run_id: int = _run_fk()
    connection: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    reason: str = Field(sa_type=Text)


class ScoreRow(StoreTable, table=True):
    __tablename__ = "scores"

    run_id: int = _run_fk()
    connection: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    inputs: dict[str, float | None] = _json(nullable=False)
    cost_of_delay: float | None = None
    job_size: float | None = None
    wsjf: float | None = None
    old_rank: str | float | None = _json()
    new_rank: int | None = None
    reason: str | None = Field(default=None, sa_type=Text)


class WriteRow(StoreTable, table=True):
    """The audit log: one planned field write and, once tried, its outcome.

    Unique per (run, connection, key, field), so recording the same plan twice changes nothing
    and re-applying a plan finds the rows it already wrote. `move`/`move_position` keep a rank
    write's place in its `RankMove` (anchor and order) so a pending plan can be rebuilt.
    """

    __tablename__ = "writes"
    __table_args__ = (
        UniqueConstraint("run_id", "connection", "key", "field"),
        Index(None, "connection", "key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(
        sa_column=Column(Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False)
    )
    connection: str
    key: str
    field: str
    old: Any = _json()
    new: Any = _json()
    expected_revision: str
    status: str
    error: str | None = Field(default=None, sa_type=Text)
    new_revision: str | None = None
    move: dict[str, Any] | None = _json()
    move_position: int | None = None
    planned_at: datetime = _when(nullable=False)
    applied_at: datetime | None = _when()


class ScheduleSlotRow(StoreTable, table=True):
    """One scheduled slot of `spm-sync serve`, claimed by the one worker that runs it (rev 0003).

    The slot time is the key, so of several workers firing the same slot only the first
    insert succeeds: the slot runs once however many workers share the store. `run_id` is
    the run the slot started (none when its cycle was skipped), without a foreign key: the
    claim stays while runs are pruned.
    """

    __tablename__ = "schedule_slots"

    slot: datetime = Field(sa_type=UtcDateTime, primary_key=True)
    schedule: str
    """The schedule the slot belongs to (`cron 0 6 * * 1-5 Europe/Berlin`, `every 60s`)."""
    worker: str
    claimed_at: datetime = _when(nullable=False)
    run_id: int | None = None
    outcome: str | None = Field(default=None, sa_type=Text)


class StatusChangeRow(StoreTable, table=True):
    """One status change of one item, as the tracker's history states it (rev 0004).

    `fingerprint` identifies the change by content (when, from, to), so reading a history
    again stores nothing twice: it is unique per item, and a unique constraint over the columns
    themselves would not do, because `from_status` may be NULL and NULL never equals NULL in
    one. `id` keeps the order the changes were stored in, which is the tracker's order (each run
    adds only newer changes), the order the flow engine expects.
    """

    __tablename__ = "status_changes"
    __table_args__ = (
        UniqueConstraint("connection", "item_key", "fingerprint"),
        Index(None, "connection", "item_key", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    connection: str
    item_key: str
    at: datetime = _when(nullable=False)
    from_status: str | None = None
    to_status: str
    to_category: str | None = None
    fingerprint: str
