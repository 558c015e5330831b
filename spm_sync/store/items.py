"""Work items and the sync state of each connection."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, tuple_, update

from spm_sync.core.domain import Level, Link, StatusCategory, WorkItem
from spm_sync.store.base import BATCH_ROWS, Row, StoreBase, batched
from spm_sync.store.records import SyncState, UpsertCounts
from spm_sync.store.tables import SyncStateRow, WorkItemRow

ITEMS = WorkItemRow.__table__  # type: ignore[attr-defined]
SYNC_STATE = SyncStateRow.__table__  # type: ignore[attr-defined]
_NOT_ON_UPDATE = {"connection", "key", "first_seen_run", "last_seen_run"}


@dataclass(frozen=True, slots=True)
class MissingScan:
    """What `mark_missing` did: items newly marked deleted, deleted items seen again, and keys
    the tracker has that the store does not (an item the pull has not delivered yet).

    `expected`: items stored in scope before this run; `answered`: keys the scan brought;
    `missing`: stored items the scan lacks. `held_back`: the caller's `may_delete` refused,
    so `marked_deleted` is 0 although `missing` is not."""

    marked_deleted: int
    restored: int
    not_stored: tuple[str, ...]
    expected: int = 0
    answered: int = 0
    missing: int = 0
    held_back: bool = False


def item_values(
    item: WorkItem, run_id: int | None, now: datetime, *, context: bool = False
) -> dict[str, Any]:
    return {
        "connection": item.connection,
        "key": item.key,
        "tracker_id": item.id,
        "type": item.type,
        "level": None if item.level is None else int(item.level),
        "title": item.title,
        "status": item.status,
        "status_category": StatusCategory(item.status_category).value,
        "updated": item.updated,
        "revision": item.revision,
        "created": item.created,
        "parent_key": item.parent_key,
        "labels": list(item.labels),
        "links": [
            {"type": link.type, "direction": link.direction, "target_key": link.target_key}
            for link in item.links
        ],
        "project": item.project,
        "team": item.team,
        "components": list(item.components),
        "url": item.url,
        "business_value": item.business_value,
        "time_criticality": item.time_criticality,
        "risk_reduction": item.risk_reduction,
        "job_size": item.job_size,
        "wsjf_score": item.wsjf_score,
        "cost_of_delay": item.cost_of_delay,
        "priority": item.priority,
        "rank": item.rank,
        "field_problems": dict(item.field_problems),
        "first_seen_run": run_id,
        "last_seen_run": run_id,
        "stored_at": now,
        "deleted_at": None,
        "context": context,
    }


def work_item(row: Row) -> WorkItem:
    return WorkItem(
        connection=row["connection"],
        key=row["key"],
        id=row["tracker_id"],
        type=row["type"],
        level=None if row["level"] is None else Level(row["level"]),
        title=row["title"],
        status=row["status"],
        status_category=StatusCategory(row["status_category"]),
        updated=row["updated"],
        revision=row["revision"],
        created=row["created"],
        parent_key=row["parent_key"],
        labels=tuple(row["labels"]),
        links=tuple(
            Link(type=link["type"], direction=link["direction"], target_key=link["target_key"])
            for link in row["links"]
        ),
        project=row["project"],
        team=row["team"],
        components=tuple(row["components"]),
        url=row["url"],
        business_value=row["business_value"],
        time_criticality=row["time_criticality"],
        risk_reduction=row["risk_reduction"],
        job_size=row["job_size"],
        wsjf_score=row["wsjf_score"],
        cost_of_delay=row["cost_of_delay"],
        priority=row["priority"],
        rank=row["rank"],
        field_problems=dict(row["field_problems"]),
    )


class ItemStore(StoreBase):
    def upsert_items(
        self, items: Iterable[WorkItem], run_id: int | None = None, *, context: bool = False
    ) -> UpsertCounts:
        """Insert new items and overwrite known ones, in batches, one transaction each.

        `INSERT ... ON CONFLICT (connection, key) DO UPDATE`, so pulling the same item twice
        never duplicates it; an item seen again is no longer marked deleted. Streams: items
        are consumed lazily, so a connector's generator is stored as it pages.

        A scope item (`context=False`) overwrites a context row and makes it a scope item;
        context items (see `spm_sync.pipeline.context_pull`) overwrite only context or deleted
        rows, so
        an item the pull delivered stays a scope item whatever order the two arrive in.
        """
        counts = UpsertCounts()
        for batch in batched(items, BATCH_ROWS):
            now = self._now()
            rows = {
                (item.connection, item.key): item_values(item, run_id, now, context=context)
                for item in batch
            }
            with self._writing() as connection:
                counts += self._count_changes(connection, rows)
                statement = self._insert(ITEMS)
                changes = {
                    column.name: statement.excluded[column.name]
                    for column in ITEMS.columns
                    if column.name not in _NOT_ON_UPDATE
                }
                changes["last_seen_run"] = func.coalesce(
                    statement.excluded.last_seen_run, ITEMS.c.last_seen_run
                )
                statement = statement.on_conflict_do_update(
                    index_elements=["connection", "key"],
                    set_=changes,
                    where=(ITEMS.c.context | ITEMS.c.deleted_at.is_not(None)) if context else None,
                )
                connection.execute(statement, list(rows.values()))
        return counts

    def _count_changes(
        self, connection: Connection, rows: Mapping[tuple[str, str], dict[str, Any]]
    ) -> UpsertCounts:
        by_connection: dict[str, list[str]] = defaultdict(list)
        for connection_name, key in rows:
            by_connection[connection_name].append(key)
        known: dict[tuple[str, str], tuple[str, datetime | None]] = {}
        for connection_name, keys in by_connection.items():
            query = select(ITEMS.c.key, ITEMS.c.revision, ITEMS.c.deleted_at).where(
                ITEMS.c.connection == connection_name, ITEMS.c.key.in_(keys)
            )
            for key, revision, deleted_at in connection.execute(query):
                known[(connection_name, key)] = (revision, deleted_at)
        inserted = updated = 0
        for item_ref, row in rows.items():
            if item_ref not in known:
                inserted += 1
            elif known[item_ref] != (row["revision"], None):
                updated += 1
        return UpsertCounts(inserted, updated, len(rows) - inserted - updated)

    def iter_items(
        self,
        connection: str | None = None,
        *,
        include_deleted: bool = False,
        context: bool | None = False,
    ) -> Iterator[WorkItem]:
        """Stored items ordered by (connection, key), read page by page (keyset paging), so no
        transaction stays open while the caller works through them.

        `context`: False (the default) reads the scope's items only, True only the context
        items (kept for alignment to follow, never reported), None both."""
        after: tuple[str, str] | None = None
        while True:
            query = select(ITEMS).order_by(ITEMS.c.connection, ITEMS.c.key).limit(BATCH_ROWS * 4)
            if connection is not None:
                query = query.where(ITEMS.c.connection == connection)
            if not include_deleted:
                query = query.where(ITEMS.c.deleted_at.is_(None))
            if context is not None:
                query = query.where(ITEMS.c.context.is_(context))
            if after is not None:
                query = query.where(tuple_(ITEMS.c.connection, ITEMS.c.key) > tuple_(*after))
            with self._reading() as db:
                page = [work_item(row) for row in db.execute(query).mappings()]
            yield from page
            if len(page) < BATCH_ROWS * 4:
                return
            after = (page[-1].connection, page[-1].key)

    def load_items(
        self,
        connection: str | None = None,
        *,
        include_deleted: bool = False,
        context: bool | None = False,
    ) -> list[WorkItem]:
        return list(self.iter_items(connection, include_deleted=include_deleted, context=context))

    def get_item(self, connection: str, key: str) -> WorkItem | None:
        query = select(ITEMS).where(ITEMS.c.connection == connection, ITEMS.c.key == key)
        with self._reading() as db:
            row = db.execute(query).mappings().first()
        return None if row is None else work_item(row)

    def count_items(
        self,
        connection: str | None = None,
        *,
        include_deleted: bool = False,
        context: bool | None = False,
    ) -> int:
        query = select(func.count()).select_from(ITEMS)
        if context is not None:
            query = query.where(ITEMS.c.context.is_(context))
        if connection is not None:
            query = query.where(ITEMS.c.connection == connection)
        if not include_deleted:
            query = query.where(ITEMS.c.deleted_at.is_(None))
        with self._reading() as db:
            return int(db.execute(query).scalar_one())

    def max_updated(self, connection: str) -> datetime | None:
        """The newest `updated` stored for `connection`: the next incremental pull's start."""
        query = select(func.max(ITEMS.c.updated)).where(ITEMS.c.connection == connection)
        with self._reading() as db:
            value: datetime | None = db.execute(query).scalar_one()
        return value

    def mark_missing(
        self,
        connection: str,
        seen_keys: Collection[str],
        run_id: int | None = None,
        *,
        may_delete: Callable[[int, int], bool] | None = None,
    ) -> MissingScan:
        """Reconcile with a full key scan of the tracker scope: stored items whose key is not
        in `seen_keys` are marked deleted (kept, for the audit trail and `undo`); deleted items
        whose key is seen again are restored; seen items get `last_seen_run = run_id`.

        `may_delete(expected, missing)` is asked, in the same transaction, before anything is
        marked: `expected` counts the items stored in scope before this run (items first
        stored by `run_id` and seen are new, not expected), `missing` those the scan lacks.
        When it answers False nothing is marked deleted (the mass-deletion guard,
        `spm_sync.pipeline.deletion_guard`); restoring and `last_seen_run` still happen, they
        are safe.

        Context items are outside the scope by definition: the scan neither counts nor marks
        them (a context key the scan answers is an item that entered the scope unpulled, so it
        is reported in `not_stored`).
        """
        seen = set(seen_keys)
        now = self._now()
        with self._writing() as db:
            query = select(ITEMS.c.key, ITEMS.c.deleted_at, ITEMS.c.first_seen_run).where(
                ITEMS.c.connection == connection, ITEMS.c.context.is_(False)
            )
            rows = db.execute(query).all()
            stored = {key: deleted_at for key, deleted_at, _ in rows}
            new = sum(
                1
                for key, deleted, first in rows
                if deleted is None and run_id is not None and first == run_id and key in seen
            )
            gone = [key for key, deleted in stored.items() if deleted is None and key not in seen]
            back = [key for key, deleted in stored.items() if deleted is not None and key in seen]
            present = [key for key in stored if key in seen]
            expected = sum(1 for deleted in stored.values() if deleted is None) - new
            held_back = (
                bool(gone) and may_delete is not None and not may_delete(expected, len(gone))
            )
            scope = (ITEMS.c.connection == connection) & ITEMS.c.context.is_(False)
            for chunk in batched([] if held_back else gone, BATCH_ROWS):
                db.execute(update(ITEMS).where(scope, ITEMS.c.key.in_(chunk)), {"deleted_at": now})
            for chunk in batched(back, BATCH_ROWS):
                db.execute(update(ITEMS).where(scope, ITEMS.c.key.in_(chunk)), {"deleted_at": None})
            if run_id is not None:
                for chunk in batched(present, BATCH_ROWS):
                    statement = update(ITEMS).where(scope, ITEMS.c.key.in_(chunk))
                    db.execute(statement, {"last_seen_run": run_id})
        not_stored = tuple(sorted(seen - stored.keys()))
        return MissingScan(
            marked_deleted=0 if held_back else len(gone),
            restored=len(back),
            not_stored=not_stored,
            expected=expected,
            answered=len(seen),
            missing=len(gone),
            held_back=held_back,
        )

    def get_sync_state(self, connection: str) -> SyncState | None:
        query = select(SYNC_STATE).where(SYNC_STATE.c.connection == connection)
        with self._reading() as db:
            row = db.execute(query).mappings().first()
        return None if row is None else _sync_state(row)

    def sync_states(self) -> dict[str, SyncState]:
        with self._reading() as db:
            rows = db.execute(select(SYNC_STATE)).mappings().all()
        return {row["connection"]: _sync_state(row) for row in rows}

    def save_sync_state(self, state: SyncState) -> None:
        values = {
            "connection": state.connection,
            "watermark": state.watermark,
            "last_full_sync": state.last_full_sync,
            "last_deletion_scan": state.last_deletion_scan,
            "cursor": state.cursor,
            "updated_at": self._now(),
        }
        self._upsert(SYNC_STATE, values, ("connection",))


def _sync_state(row: Row) -> SyncState:
    return SyncState(
        connection=row["connection"],
        watermark=row["watermark"],
        last_full_sync=row["last_full_sync"],
        last_deletion_scan=row["last_deletion_scan"],
        cursor=row["cursor"],
    )
