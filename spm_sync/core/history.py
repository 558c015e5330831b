"""What the flow engine reads: each item's status changes, and the item they belong to.

The store keeps one row per status change; the tracker's changelog is the source (Jira
`changelog` entries of field "status", Azure DevOps `System.State` updates). Items are
identified the way the rest of spm-sync identifies them: `(connection, key)`.

Items moved between projects. Jira gives a moved issue a new key and keeps its changelog;
Azure DevOps keeps the id. The store, keyed by `(connection, key)`, may still hold the record
under the old key, with the changes recorded before the move. The convention: the current
record lists the keys it had before in `former_refs`, and `merge_moved` folds any record still
held under one of those keys into it, so the history continues under the new key and the item is
counted once (in its current project's value streams).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import repeat
from operator import floordiv, sub
from typing import NamedTuple

from spm_sync.core.domain import ItemRef, StatusCategory

__all__ = [
    "EPOCH",
    "FlowItem",
    "FlowProblem",
    "ItemRef",
    "StatusChange",
    "epoch_microseconds",
    "group_changes",
    "merge_moved",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def epoch_microseconds(moments: Iterable[datetime]) -> Iterator[int]:
    """Aware datetimes as whole microseconds since the epoch: exact, and ordered as the
    datetimes are, so the store can hand history to the flow engine as plain integers (a naive
    datetime raises TypeError, as comparing it with an aware one would)."""
    return map(floordiv, map(sub, moments, repeat(EPOCH)), repeat(_MICROSECOND))


class StatusChange(NamedTuple):
    """One status transition (a named tuple: a portfolio has millions of them).

    `item` is the ref the change was recorded under, which is the item's old ref for a change
    made before a move. `at` is aware UTC. `from_status` is None when the tracker does not say
    (an Azure DevOps revision that sets the first state). `to_category` is the tracker's category
    of `to_status` when the changelog carries it (Jira's statusCategory "new" / "indeterminate" /
    "done" maps to `StatusCategory.TODO` / `IN_PROGRESS` / `DONE`); None when unknown.
    """

    item: ItemRef
    at: datetime
    from_status: str | None
    to_status: str
    to_category: StatusCategory | None = None


class FlowItem(NamedTuple):
    """One item as the flow engine sees it: what it is now, and how it got there (a named
    tuple: one is built per measured item each run, and a frozen dataclass costs several times
    as much to build).

    `changes` are in the order the tracker recorded them (changelog order); `derive_flows`
    copes with timestamps that disagree with that order. `resolved` is the tracker's own
    completion date (Jira `resolutiondate`, Azure DevOps `Microsoft.VSTS.Common.ClosedDate`),
    used only when the history cannot say when a done item was finished. `value_streams` are the
    item's values of the configured grouping (project, area path, component or label): an item
    with two components is on both streams' boards.
    """

    ref: ItemRef
    type: str
    created: datetime | None
    status: str
    status_category: StatusCategory
    changes: tuple[StatusChange, ...] = ()
    value_streams: tuple[str, ...] = ()
    resolved: datetime | None = None
    former_refs: tuple[ItemRef, ...] = ()


@dataclass(frozen=True, slots=True)
class FlowProblem:
    """Why one item's flow facts are incomplete or corrected; a sentence for the report."""

    ref: ItemRef
    reason: str


def group_changes(changes: Iterable[StatusChange]) -> dict[ItemRef, list[StatusChange]]:
    """Changes of a flat stream (as the store yields them) grouped by the ref they carry,
    keeping each item's order."""
    grouped: dict[ItemRef, list[StatusChange]] = defaultdict(list)
    for change in changes:
        grouped[change.item].append(change)
    return dict(grouped)


def merge_moved(items: Iterable[FlowItem]) -> tuple[list[FlowItem], list[FlowProblem]]:
    """Fold records held under a former key into the item that carries that key now.

    A chain of moves (A → B → C) ends at the record that no other record names as its new self.
    The merged history keeps each distinct change once, ordered by time; the earliest creation
    date wins (a move may reset it in some trackers). Records naming each other in a cycle are
    left apart, with a problem on each.
    """
    items = list(items)
    successor: dict[ItemRef, ItemRef] = {}
    for item in items:
        for former in item.former_refs:
            if former != item.ref:
                successor[former] = item.ref
    if not successor:
        return items, []
    by_ref = {item.ref: item for item in items}
    problems: list[FlowProblem] = []
    absorbed: dict[ItemRef, list[FlowItem]] = defaultdict(list)
    for item in items:
        if item.ref not in successor:
            continue
        final = _final_ref(item.ref, successor)
        if final is None or final not in by_ref:
            problems.append(FlowProblem(item.ref, "moves between keys form a cycle; kept apart"))
            continue
        absorbed[final].append(item)
    merged_away = {old.ref for olds in absorbed.values() for old in olds}
    result: list[FlowItem] = []
    for item in items:
        if item.ref in merged_away:
            continue
        olds = absorbed.get(item.ref)
        result.append(_merge(item, olds) if olds else item)
    return result, problems


def _final_ref(ref: ItemRef, successor: Mapping[ItemRef, ItemRef]) -> ItemRef | None:
    seen = {ref}
    while ref in successor:
        ref = successor[ref]
        if ref in seen:
            return None
        seen.add(ref)
    return ref


def _merge(current: FlowItem, olds: list[FlowItem]) -> FlowItem:
    seen: set[tuple[datetime, str | None, str]] = set()
    changes: list[StatusChange] = []
    for record in (*olds, current):
        for change in record.changes:
            identity = (change.at, change.from_status, change.to_status)
            if identity not in seen:
                seen.add(identity)
                changes.append(change)
    changes.sort(key=lambda change: change.at)
    created = [c for c in (current.created, *(old.created for old in olds)) if c is not None]
    formers = {*current.former_refs, *(ref for old in olds for ref in (old.ref, *old.former_refs))}
    return current._replace(
        changes=tuple(changes),
        created=min(created) if created else None,
        former_refs=tuple(sorted(formers - {current.ref})),
    )
