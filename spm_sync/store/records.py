"""What the store takes and gives back: plain frozen values, never ORM rows, so stages and
reports can hold them after the connection is closed and tests can build them by hand."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from spm_sync.core.domain import PlannedWrite, WriteStatus


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    """Finished, but at least one connection or writer failed (reported)."""
    FAILED = "failed"


class StageStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class AuditStatus(StrEnum):
    """`planned` until the connector tried the write; then the `WriteStatus` it answered."""

    PLANNED = "planned"
    WRITTEN = WriteStatus.WRITTEN.value
    UNCHANGED = WriteStatus.UNCHANGED.value
    CONFLICT = WriteStatus.CONFLICT.value
    FAILED = WriteStatus.FAILED.value


@dataclass(frozen=True, slots=True)
class UpsertCounts:
    """Items new to the store, stored with a new revision (or back from deleted), and seen
    again unchanged."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.unchanged

    def __add__(self, other: UpsertCounts) -> UpsertCounts:
        return UpsertCounts(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
        )


@dataclass(frozen=True, slots=True)
class SyncState:
    """Where the next pull of a connection starts.

    `watermark`: the largest `updated` stored (the pipeline subtracts the overlap).
    `cursor`: an opaque continuation token for trackers that have one.
    """

    connection: str
    watermark: datetime | None = None
    last_full_sync: datetime | None = None
    last_deletion_scan: datetime | None = None
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: int
    started: datetime
    finished: datetime | None
    status: RunStatus
    stage: str | None
    mode: str
    trigger: str
    error: str | None
    result: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class HeadlineRecord:
    """A finished run's headline figures, read without its (large) result document: what the
    report's trend and "change since last run" need."""

    run_id: int
    started: datetime
    finished: datetime
    status: RunStatus
    mode: str
    trigger: str
    headline: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class StageRecord:
    run_id: int
    stage: str
    connection: str
    """"" when the stage covers the whole run."""
    status: StageStatus
    started_at: datetime
    finished_at: datetime | None
    detail: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class SyncStats:
    """What pulling one connection took in one run."""

    connection: str
    since: datetime | None = None
    pulled: int = 0
    marked_deleted: int = 0
    requests: int = 0
    by_endpoint: Mapping[str, int] = field(default_factory=dict)
    retries: int = 0
    throttled: int = 0
    waited_seconds: float = 0.0
    rate_limit: Mapping[str, str] = field(default_factory=dict)
    duration_seconds: float = 0.0
    warnings: tuple[str, ...] = ()
    error: str | None = None

    @classmethod
    def from_request_stats(
        cls, connection: str, request_stats: Mapping[str, Any], **values: Any
    ) -> SyncStats:
        """Build from `spm_sync.core.requests.RequestStats.as_dict()` plus the pipeline's
        numbers."""
        return cls(
            connection=connection,
            requests=int(request_stats.get("requests", 0)),
            by_endpoint=dict(request_stats.get("by_endpoint", {})),
            retries=int(request_stats.get("retries", 0)),
            throttled=int(request_stats.get("throttled", 0)),
            waited_seconds=float(request_stats.get("waited_seconds", 0.0)),
            rate_limit=dict(request_stats.get("rate_limit", {})),
            **values,
        )


@dataclass(frozen=True, slots=True)
class AlignmentRecord:
    """Item (connection, key) moves Key Result `kr_id`; `via` and `path` are the evidence."""

    connection: str
    key: str
    kr_id: str
    via: str
    path: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OrphanRecord:
    connection: str
    key: str
    reason: str


@dataclass(frozen=True, slots=True)
class ScoreRecord:
    connection: str
    key: str
    inputs: Mapping[str, float | None]
    cost_of_delay: float | None
    job_size: float | None
    wsjf: float | None
    old_rank: str | float | None
    new_rank: int | None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One row of the audit log."""

    run_id: int
    write: PlannedWrite
    status: AuditStatus
    error: str | None
    new_revision: str | None
    planned_at: datetime
    applied_at: datetime | None
