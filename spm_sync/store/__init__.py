"""The spm-sync store: work items, sync state, runs and the audit log, on SQLite or PostgreSQL.

    store = Store("sqlite:///spm-sync.db")          # schema created/upgraded on first use
    store = Store.from_settings(config.store)        # password from its environment variable
    run_id = store.start_run("plan", trigger="schedule")
    counts = store.upsert_items(connector.pull(since), run_id)

Every method opens its own connection from the engine's pool, so one `Store` may be shared by
the threads that pull connections in parallel. Datetimes go in timezone-aware and come back in
UTC on both backends.
"""

from __future__ import annotations

from typing import Any

from spm_sync.config.sections import StoreSettings
from spm_sync.store.audit import AuditStore
from spm_sync.store.context import ContextStore, References
from spm_sync.store.cycle_lock import StoreBusy
from spm_sync.store.engine import StoreTooNew, current_revision
from spm_sync.store.history import StatusHistoryStore
from spm_sync.store.items import ItemStore, MissingScan
from spm_sync.store.outcomes import OutcomeStore
from spm_sync.store.records import (
    AlignmentRecord,
    AuditRow,
    AuditStatus,
    HeadlineRecord,
    OrphanRecord,
    RunRecord,
    RunStatus,
    ScoreRecord,
    StageRecord,
    StageStatus,
    SyncState,
    SyncStats,
    UpsertCounts,
)
from spm_sync.store.runs import WHOLE_RUN, RunStore
from spm_sync.store.slots import SlotClaim, SlotStore

__all__ = [
    "WHOLE_RUN",
    "AlignmentRecord",
    "AuditRow",
    "AuditStatus",
    "HeadlineRecord",
    "MissingScan",
    "OrphanRecord",
    "References",
    "RunRecord",
    "RunStatus",
    "ScoreRecord",
    "SlotClaim",
    "StageRecord",
    "StageStatus",
    "Store",
    "StoreBusy",
    "StoreTooNew",
    "SyncState",
    "SyncStats",
    "UpsertCounts",
]


class Store(
    ItemStore,
    ContextStore,
    RunStore,
    OutcomeStore,
    AuditStore,
    SlotStore,
    StatusHistoryStore,
):
    """`Store(url, *, schema=None, migrate=True, clock=utc_now, echo=False)`."""

    @classmethod
    def from_settings(cls, settings: StoreSettings, **options: Any) -> Store:
        """The store a config describes (`store:` section), password read from its env var."""
        return cls(settings.connect_url(), schema=settings.db_schema, **options)

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at."""
        return current_revision(self._engine)

    def __enter__(self) -> Store:
        return self
