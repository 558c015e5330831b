"""What the pull needs to keep context items (ancestors and link targets outside the scope):
the references scope items make, which referenced keys are held, and retiring the context
items nothing refers to any more. See `spm_sync.pipeline.context_pull` for why they exist."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import NamedTuple

from sqlalchemy import select, update

from spm_sync.store.base import BATCH_ROWS, StoreBase, batched
from spm_sync.store.items import ITEMS


class References(NamedTuple):
    """The keys one stored item points at: its parent and its links as (type, target)."""

    key: str
    parent_key: str | None
    links: tuple[tuple[str, str], ...]


def _references(key: str, parent_key: str | None, links: object) -> References:
    pairs: list[tuple[str, str]] = []
    for link in links if isinstance(links, list) else ():
        if isinstance(link, dict) and link.get("target_key"):
            pairs.append((str(link.get("type") or ""), str(link["target_key"])))
    return References(key, parent_key, tuple(pairs))


class ContextStore(StoreBase):
    def item_references(
        self, connection: str, keys: Collection[str] | None = None
    ) -> Iterator[References]:
        """References of the connection's live scope items (not deleted, not context); with
        `keys`, only of those items. Read a page at a time, so a full portfolio's links are
        never all held at once."""
        columns = (ITEMS.c.key, ITEMS.c.parent_key, ITEMS.c.links)
        live = (
            (ITEMS.c.connection == connection)
            & ITEMS.c.deleted_at.is_(None)
            & ITEMS.c.context.is_(False)
        )
        if keys is not None:
            for chunk in batched(sorted(keys), BATCH_ROWS):
                with self._reading() as db:
                    rows = db.execute(select(*columns).where(live, ITEMS.c.key.in_(chunk))).all()
                yield from (_references(*row) for row in rows)
            return
        after: str | None = None
        while True:
            query = select(*columns).where(live).order_by(ITEMS.c.key).limit(BATCH_ROWS * 4)
            if after is not None:
                query = query.where(ITEMS.c.key > after)
            with self._reading() as db:
                rows = db.execute(query).all()
            yield from (_references(*row) for row in rows)
            if len(rows) < BATCH_ROWS * 4:
                return
            after = rows[-1][0]

    def held_keys(
        self, connection: str, keys: Collection[str], *, context: bool | None = None
    ) -> set[str]:
        """Which of `keys` the store holds live (not deleted): scope items (`context=False`),
        context items (True) or either (None)."""
        held: set[str] = set()
        for chunk in batched(sorted(keys), BATCH_ROWS):
            query = select(ITEMS.c.key).where(
                ITEMS.c.connection == connection,
                ITEMS.c.deleted_at.is_(None),
                ITEMS.c.key.in_(chunk),
            )
            if context is not None:
                query = query.where(ITEMS.c.context.is_(context))
            with self._reading() as db:
                held.update(db.execute(query).scalars())
        return held

    def retire_context(self, connection: str, keep: Collection[str]) -> int:
        """Mark deleted the live context items not in `keep` (nothing in the scope refers to
        them any more, or the tracker no longer returns them); returns how many."""
        wanted = set(keep)
        query = select(ITEMS.c.key).where(
            ITEMS.c.connection == connection,
            ITEMS.c.context.is_(True),
            ITEMS.c.deleted_at.is_(None),
        )
        now = self._now()
        with self._writing() as db:
            gone = [key for key in db.execute(query).scalars() if key not in wanted]
            scope = (ITEMS.c.connection == connection) & ITEMS.c.context.is_(True)
            for chunk in batched(gone, BATCH_ROWS):
                db.execute(update(ITEMS).where(scope, ITEMS.c.key.in_(chunk)), {"deleted_at": now})
        return len(gone)
