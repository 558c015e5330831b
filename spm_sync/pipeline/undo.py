"""`spm-sync undo --run ID`: write back the values a run replaced, audited as a new run.

Only the run's `written` writes are undone. The connections involved are pulled first
(incrementally), so the restoring writes are planned from the trackers' current state and
guarded like any write: each carries the revision just pulled, and the connector skips it as a
conflict when the item changes again before it is written. On top of that, a write is only
undone while the value the run wrote is still there; a value changed since (by a person, or by
a later run) is reported as a conflict and left alone:
- score, Cost of Delay, priority, numeric rank: the current value must equal what was written;
- labels: the labels the run added must still be there and those it removed still absent;
  only that change is reversed, other labels are kept;
- Jira rank (a lexorank, written as moves): the items the run moved are put back right after
  the item that preceded them in the old order; everything else keeps its current order, and
  the planner's minimal moves do the rest.
Jira does not return the new `updated` of an edit, so for Jira the check is the per-field one.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from spm_sync.core.domain import (
    ConnectionPlan,
    PlannedWrite,
    RankMove,
    WorkItem,
    WriteField,
    WriteResult,
    WriteStatus,
    WriteValue,
)
from spm_sync.engines.planning import WritePolicy, current_rank_order, plan_rank
from spm_sync.store import AuditRow, Store


@dataclass
class UndoPlan:
    """The restoring writes of one connection, and the writes that cannot be undone."""

    connection: str
    plan: ConnectionPlan
    conflicts: list[WriteResult] = field(default_factory=list)

    def all_writes(self) -> ConnectionPlan:
        """The plan plus the conflicting rows, for the audit log."""
        blocked = tuple(result.write for result in self.conflicts)
        return ConnectionPlan(self.connection, (*self.plan.writes, *blocked), self.plan.moves)


def written_rows(store: Store, run_id: int) -> list[AuditRow]:
    return store.audit_rows(run_id, status="written")


def plan_undo(
    rows: Sequence[AuditRow],
    items: dict[str, WorkItem],
    old_order: Sequence[str],
    rank_kind: str,
    undone_run: int,
) -> UndoPlan:
    """The restoring plan for one connection's written rows, against its current `items`.

    `old_order`: the undone run's rank scope in the order before it (for Jira rank moves).
    """
    connection = rows[0].write.connection
    writes: list[PlannedWrite] = []
    conflicts: list[WriteResult] = []
    moved: list[str] = []
    for row in rows:
        written = row.write
        item = items.get(written.item_key)
        if item is None:
            conflicts.append(_conflict(written, "the item is no longer in the tracker's scope"))
            continue
        if written.field is WriteField.RANK and rank_kind == "lexorank":
            moved.append(written.item_key)
            continue
        restore, why = _restoring_write(written, item, undone_run)
        if restore is None:
            conflicts.append(_conflict(_as_undo(written, item), why))
        else:
            writes.append(restore)
    moves = _rank_moves(connection, items, old_order, moved) if moved else []
    return UndoPlan(connection, ConnectionPlan(connection, tuple(writes), tuple(moves)), conflicts)


def _as_undo(written: PlannedWrite, item: WorkItem) -> PlannedWrite:
    return PlannedWrite(
        written.connection, written.item_key, written.field, _current(item, written.field),
        written.old, item.revision,
    )  # fmt: skip


def _conflict(write: PlannedWrite, reason: str) -> WriteResult:
    return WriteResult(write, WriteStatus.CONFLICT, reason)


def _current(item: WorkItem, written_field: WriteField) -> WriteValue:
    if written_field is WriteField.LABELS:
        return tuple(sorted(item.labels))
    value: WriteValue = getattr(item, written_field.value)
    return value


def _restoring_write(
    written: PlannedWrite, item: WorkItem, undone_run: int
) -> tuple[PlannedWrite | None, str]:
    current = _current(item, written.field)
    if written.field is WriteField.LABELS:
        labels = _labels_undone(written, item)
        if labels is None:
            return None, f"the labels run {undone_run} changed were changed again since"
        new: WriteValue = labels
    else:
        if not _same(current, written.new):
            return None, (f"changed since run {undone_run} wrote {written.new!r}: now {current!r}")
        new = written.old
    restore = PlannedWrite(
        written.connection,
        written.item_key,
        written.field,
        current,
        new,
        item.revision,
    )
    return restore, ""


def _same(current: object, written: object) -> bool:
    if isinstance(current, int | float) and isinstance(written, int | float):
        return math.isclose(float(current), float(written), rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(current, str) and isinstance(written, int | float):
        try:
            return math.isclose(float(current), float(written), rel_tol=1e-9, abs_tol=1e-9)
        except ValueError:
            return False
    return current == written or (current is not None and str(current) == str(written))


def _labels_undone(written: PlannedWrite, item: WorkItem) -> tuple[str, ...] | None:
    """The item's labels with the run's change reversed, or None when it no longer stands."""
    old = {label.casefold(): label for label in _label_set(written.old)}
    new = {label.casefold(): label for label in _label_set(written.new)}
    current = {label.casefold(): label for label in item.labels}
    added = new.keys() - old.keys()
    removed = old.keys() - new.keys()
    if not added <= current.keys() or removed & current.keys():
        return None
    restored = {key: value for key, value in current.items() if key not in added}
    restored.update({key: old[key] for key in removed})
    return tuple(sorted(restored.values()))


def _label_set(value: WriteValue) -> list[str]:
    if value is None:
        return []
    if isinstance(value, tuple):
        return [str(label) for label in value]
    return [str(value)]


def restore_order(current: Sequence[str], old_order: Sequence[str], moved: set[str]) -> list[str]:
    """`current` with each moved key put back right after its predecessor in `old_order`
    (processed in old order, so a moved predecessor is already back in place)."""
    present = set(current)
    target = [key for key in current if key not in moved]
    placed = set(target)
    for index, key in enumerate(old_order):
        if key not in moved or key not in present:
            continue
        predecessor = next((k for k in reversed(old_order[:index]) if k in placed), None)
        position = 0 if predecessor is None else target.index(predecessor) + 1
        target.insert(position, key)
        placed.add(key)
    return target


def _rank_moves(
    connection: str, items: dict[str, WorkItem], old_order: Sequence[str], moved: list[str]
) -> list[RankMove]:
    scope_keys = [key for key in old_order if key in items]
    current, _ = current_rank_order([items[key] for key in scope_keys], "lexorank")
    target = restore_order(current, old_order, set(moved))
    settings = WritePolicy(connection=connection, rank_kind="lexorank", rank=True)
    _, moves = plan_rank(settings, {key: items[key] for key in scope_keys}, target)
    return moves


def old_orders(store: Store, run_id: int) -> dict[str, list[str]]:
    """Per connection, the undone run's rank scope in the order it had before that run."""
    by_connection: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for score in store.scores(run_id):
        if isinstance(score.old_rank, int | float):
            by_connection[score.connection].append((float(score.old_rank), score.key))
    return {name: [key for _, key in sorted(pairs)] for name, pairs in by_connection.items()}
