"""Status history: every item's status changes, stored once each, read back grouped per item.

The flow engine needs each item's changes in the tracker's order; the store keeps them in the
order they were stored (`id`), which is that order, because each run adds only changes newer
than the ones it already holds (a re-read history repeats stored changes, which are skipped by
their fingerprint). Reading streams page by page, grouped per item, as plain named tuples
with shared status strings: a portfolio has millions of changes, and a few dozen status names.

Only changes of items the store holds (deleted ones included) are kept: a tracker whose
history is a project-wide feed (Azure DevOps reporting revisions) brings the changes of every
area path, and the store would otherwise grow with work nobody reports. An item that comes
into scope later is pulled by a full sync, whose history pull starts the feed over
(`spm_sync.pipeline.history_pull`), so its earlier changes are read then.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Collection, Container, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, func, select, tuple_

from spm_sync.core.domain import ItemRef, StatusCategory
from spm_sync.core.history import StatusChange, epoch_microseconds
from spm_sync.store.base import BATCH_ROWS, StoreBase, batched
from spm_sync.store.items import ITEMS, SYNC_STATE
from spm_sync.store.tables import StatusChangeRow

STATUS_CHANGES = StatusChangeRow.__table__  # type: ignore[attr-defined]
READ_PAGE_ROWS = BATCH_ROWS * 8
"""Rows per read page: big enough that paging costs little, small enough to stay small."""
_CATEGORIES = {category.value: category for category in StatusCategory}
CATEGORY_ORDER = tuple(StatusCategory)
"""`StatusColumns.to_category` holds a category as its place here."""


class StatusColumns(NamedTuple):
    """One connection's stored changes as columns, item by item (by key) in stored order:
    `keys[n]` has the next `counts[n]` changes. Per change: `at` in microseconds since the
    epoch (UTC), `from_status` and `to_status` as places in `names` (-1: not said), and
    `to_category` as a place in `CATEGORY_ORDER` (-1: not said)."""

    keys: list[str]
    counts: list[int]
    at: array[int]
    from_status: array[int]
    to_status: array[int]
    to_category: array[int]
    names: list[str]


def fingerprint(at: datetime, to_status: str) -> str:
    """What makes a change the same change when it is read again: when, and into which status.

    Not the status it left: Azure DevOps' revisions feed names it only when the run saw the
    item's previous revision, so a change first read with no `from_status` comes back with
    one when the feed is read from the start again, and must not be stored twice. Not the
    category either, which may be told or not. One item cannot enter the same status twice
    at the same instant, so nothing real is merged.
    """
    when = at.astimezone(UTC).isoformat()
    return hashlib.blake2b(f"{when}\x1f{to_status}".encode(), digest_size=16).hexdigest()


def _row(change: StatusChange) -> dict[str, Any]:
    connection, key = change.item
    return {
        "connection": connection,
        "item_key": key,
        "at": change.at,
        "from_status": change.from_status,
        "to_status": change.to_status,
        "to_category": None if change.to_category is None else change.to_category.value,
        "fingerprint": fingerprint(change.at, change.to_status),
    }


class StatusHistoryStore(StoreBase):
    def add_status_changes(
        self,
        connection: str,
        changes: Iterable[StatusChange],
        *,
        stored_items_only: bool = True,
    ) -> int:
        """Store the changes the store does not hold yet; returns how many were new.

        Consumes `changes` a batch at a time (one transaction each), so a connector's
        generator is stored as it pages. Each change must belong to `connection`. Changes of
        items the store does not hold are dropped unless `stored_items_only` is False (see
        the module docstring).
        """
        table = STATUS_CHANGES
        new = 0
        for batch in batched(changes, BATCH_ROWS):
            rows: dict[tuple[str, str], dict[str, Any]] = {}
            for change in batch:
                if change.item[0] != connection:
                    raise ValueError(
                        f"a status change of {change.item[0]!r} given as one of {connection!r}"
                    )
                row = _row(change)
                rows.setdefault((row["item_key"], row["fingerprint"]), row)
            statement = (
                self._insert(table)
                .on_conflict_do_nothing(index_elements=["connection", "item_key", "fingerprint"])
                .returning(table.c.id)
            )
            with self._writing() as db:
                if not stored_items_only:
                    kept = list(rows.values())
                else:
                    held = self._stored_keys(db, connection, {key for key, _ in rows})
                    kept = [row for (key, _), row in rows.items() if key in held]
                if kept:
                    new += len(db.execute(statement, kept).all())
        return new

    @staticmethod
    def _stored_keys(db: Connection, connection: str, keys: set[str]) -> set[str]:
        query = select(ITEMS.c.key).where(ITEMS.c.connection == connection, ITEMS.c.key.in_(keys))
        return set(db.execute(query).scalars())

    def iter_status_changes(self, connection: str | None = None) -> Iterator[StatusChange]:
        """Every stored change, by connection and item, each item's in stored order; read page
        by page (keyset paging), so no transaction stays open while the caller works."""
        for _, changes in self.iter_status_histories(connection):
            yield from changes

    def iter_status_histories(
        self,
        connection: str | None = None,
        *,
        keys: Container[str] | None = None,
        levels: Collection[int] | None = None,
    ) -> Iterator[tuple[ItemRef, tuple[StatusChange, ...]]]:
        """Each item's stored changes, item by item (by connection and key), in stored order;
        with `keys`, only the items whose key is in it; with `levels`, only those of stored,
        not deleted items of these levels (chosen by the database: the rows of the other
        levels, most of a portfolio's, are never fetched)."""
        if connection is None:
            for name in self._history_connections():
                yield from self.iter_status_histories(name, keys=keys, levels=levels)
            return
        names: dict[str, str] = {}
        ref: ItemRef | None = None
        current: list[StatusChange] = []
        for page in self._history_pages(connection, levels):
            for _, key, at, from_status, to_status, category in page:
                if keys is not None and key not in keys:
                    continue
                if ref is None or ref[1] != key:
                    if ref is not None:
                        yield ref, tuple(current)
                    ref, current = (connection, key), []
                current.append(
                    StatusChange(
                        ref,
                        at,
                        None if from_status is None else names.setdefault(from_status, from_status),
                        names.setdefault(to_status, to_status),
                        None if category is None else _CATEGORIES.get(category),
                    )
                )
        if ref is not None:
            yield ref, tuple(current)

    def read_status_columns(
        self,
        connection: str,
        *,
        keys: Container[str] | None = None,
        levels: Collection[int] | None = None,
    ) -> StatusColumns:
        """The same changes as `iter_status_histories(connection, ...)`, as columns: no
        object per change, so the flow engine can compute on arrays (see `StatusColumns`)."""
        columns = StatusColumns([], [], array("q"), array("q"), array("q"), array("q"), [])
        code: dict[str | None, int] = {None: -1}
        category_code = {category.value: n for n, category in enumerate(CATEGORY_ORDER)}
        item_keys, counts = columns.keys, columns.counts
        last_key: str | None = None
        for page in self._history_pages(connection, levels):
            rows = [row for row in page if keys is None or row[1] in keys]
            if not rows:
                continue
            _, page_keys, moments, from_status, to_status, category = zip(*rows, strict=True)
            for key in page_keys:
                if key != last_key:
                    item_keys.append(key)
                    counts.append(0)
                    last_key = key
                counts[-1] += 1
            columns.at.extend(epoch_microseconds(moments))
            for names, target in (
                (from_status, columns.from_status),
                (to_status, columns.to_status),
            ):
                for name in dict.fromkeys(names):
                    code.setdefault(name, len(code) - 1)
                target.extend(map(code.__getitem__, names))
            columns.to_category.extend(
                -1 if value is None else category_code.get(value, -1) for value in category
            )
        columns.names.extend(name for name in code if name is not None)
        return columns

    def _history_pages(
        self, connection: str, levels: Collection[int] | None
    ) -> Iterator[Sequence[Any]]:
        """The connection's stored changes as pages of rows (id, item key, at, from status,
        to status, category), by item key and id; with `levels`, only those of stored, not
        deleted items of these levels."""
        table = STATUS_CHANGES
        columns = (
            table.c.id,
            table.c.item_key,
            table.c.at,
            table.c.from_status,
            table.c.to_status,
            table.c.to_category,
        )
        after: tuple[str, int] | None = None
        while True:
            # Keyset paging within one connection, on (item_key, id) after `connection = ?`:
            # the index (connection, item_key, id) then starts each page where the last one
            # ended. A row value over all three columns made SQLite scan the connection's rows
            # from the start on every page (2M changes: 80 s instead of a few).
            query = (
                select(*columns)
                .where(table.c.connection == connection)
                .order_by(table.c.item_key, table.c.id)
            )
            if levels is not None:
                query = query.join(
                    ITEMS,
                    (ITEMS.c.connection == table.c.connection) & (ITEMS.c.key == table.c.item_key),
                ).where(ITEMS.c.level.in_(list(levels)), ITEMS.c.deleted_at.is_(None))
            if after is not None:
                query = query.where(tuple_(table.c.item_key, table.c.id) > tuple_(*after))
            with self._reading() as db:
                page = db.execute(query.limit(READ_PAGE_ROWS)).all()
            if page:
                after = (page[-1][1], page[-1][0])
                yield page
            if len(page) < READ_PAGE_ROWS:
                return

    def _history_connections(self) -> list[str]:
        query = select(STATUS_CHANGES.c.connection).distinct().order_by(STATUS_CHANGES.c.connection)
        with self._reading() as db:
            return list(db.execute(query).scalars())

    def count_status_changes(self, connection: str | None = None) -> int:
        query = select(func.count()).select_from(STATUS_CHANGES)
        if connection is not None:
            query = query.where(STATUS_CHANGES.c.connection == connection)
        with self._reading() as db:
            return int(db.execute(query).scalar_one())

    def history_cursor(self, connection: str) -> str | None:
        """Where the connection's next history pull continues (`SyncState.cursor`)."""
        query = select(SYNC_STATE.c.cursor).where(SYNC_STATE.c.connection == connection)
        with self._reading() as db:
            value: str | None = db.execute(query).scalar_one_or_none()
        return value

    def save_history_cursor(self, connection: str, cursor: str | None) -> None:
        """Record that the history is read completely, and where the next history pull
        continues; nothing is pending any more. Call it only once every change of the history
        pull is stored: a pull that failed halfway must be read again."""
        self._set_history_state(connection, cursor=cursor, history_pending_since=None)

    def history_pending_since(self, connection: str) -> datetime | None:
        """Items updated at or after this still need their history read (a history pull
        failed since); None when nothing is pending."""
        query = select(SYNC_STATE.c.history_pending_since).where(
            SYNC_STATE.c.connection == connection
        )
        with self._reading() as db:
            value: datetime | None = db.execute(query).scalar_one_or_none()
        return value

    def mark_history_pending(self, connection: str, since: datetime) -> None:
        """The history of the items updated since `since` was not read completely: the
        next history pull asks for them again (an earlier mark that reaches further back
        stays)."""
        known = self.history_pending_since(connection)
        if known is not None and known <= since:
            return
        self._set_history_state(connection, history_pending_since=since)

    def item_keys_updated_since(self, connection: str, since: datetime) -> set[str]:
        """Keys of the connection's stored scope items (not deleted, not context) updated at or
        after `since`."""
        query = select(ITEMS.c.key).where(
            ITEMS.c.connection == connection,
            ITEMS.c.updated >= since,
            ITEMS.c.deleted_at.is_(None),
            ITEMS.c.context.is_(False),
        )
        with self._reading() as db:
            return set(db.execute(query).scalars())

    def _set_history_state(self, connection: str, **values: Any) -> None:
        now = self._now()
        statement = self._insert(SYNC_STATE).values(connection=connection, updated_at=now, **values)
        statement = statement.on_conflict_do_update(
            index_elements=["connection"], set_={**values, "updated_at": now}
        )
        with self._writing() as db:
            db.execute(statement)
