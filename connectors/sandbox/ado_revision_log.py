"""The revisions an Azure DevOps sandbox has recorded, in the order it recorded them.

The reporting revisions feed pages through this log: a position in it is the feed's watermark,
so a continuation token answers exactly the revisions recorded after it. Seeded revisions come
first, in the order of their `ChangedDate` (as a project's history would have been recorded);
every revision the sandbox makes later (a PATCH, a human `touch`, the other end of a link) is
appended. Seeded revisions before an item's loaded state are kept compactly (`SeededRevision`)
and rendered from the loaded fields on demand: a generated portfolio holds a few per item.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

STATE_CHANGE_DATE = "Microsoft.VSTS.Common.StateChangeDate"


class SeededRevision(NamedTuple):
    """A revision of an item's seeded history: what differs from the loaded fields."""

    rev: int
    changed: datetime
    state: str
    state_changed: datetime


def seeded_revisions(
    created: datetime, updated: datetime, state: str, history: Sequence[tuple[datetime, str]]
) -> list[SeededRevision]:
    """Every revision of a seed, oldest first: one per state it entered (the first at creation),
    and one more at `updated` when it was edited after its last state change."""
    entries = list(history) or [(created, state)]
    if entries[-1][1] != state:
        raise ValueError(f"a status history ends in {entries[-1][1]!r}, not in {state!r}")
    revisions = [SeededRevision(n, at, name, at) for n, (at, name) in enumerate(entries, start=1)]
    last = revisions[-1]
    if updated > last.changed:
        revisions.append(SeededRevision(last.rev + 1, updated, state, last.changed))
    return revisions


def revision_fields(loaded: Mapping[str, Any], revision: SeededRevision) -> dict[str, Any]:
    """The fields of a seeded revision: the loaded ones with its state, number and dates."""
    fields = dict(loaded)
    fields["System.Rev"] = revision.rev
    fields["System.ChangedDate"] = revision.changed
    fields["System.State"] = revision.state
    fields[STATE_CHANGE_DATE] = revision.state_changed
    return fields


class RevisionLog:
    """(work item id, revision number) of every revision, by position."""

    def __init__(self) -> None:
        self._ids = array("q")
        self._revs = array("q")

    def __len__(self) -> int:
        return len(self._ids)

    def append(self, work_item_id: int, rev: int) -> None:
        self._ids.append(work_item_id)
        self._revs.append(rev)

    def extend_in_time_order(self, revisions: Iterable[tuple[datetime, int, int]]) -> None:
        """Append (changed, id, rev) revisions ordered by time, then id and number."""
        for _, work_item_id, rev in sorted(revisions):
            self.append(work_item_id, rev)

    def entry(self, position: int) -> tuple[int, int]:
        return self._ids[position], self._revs[position]
