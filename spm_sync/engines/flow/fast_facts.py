"""Flow facts of many items at once, with array operations over all their status changes.

`facts.derive_flows` walks every change in a Python loop: at 2 million changes that loop is
most of the flow stage's time. Here a connection's changes are laid end to end in arrays
(epoch microseconds, status code, category code; `flow.history_arrays`) and each item's walk
becomes a few reductions over its slice: the first entry into progress, the start of the
final run of done, the last change of stage, the active and waiting sums. The rules are
`facts`'s, unchanged; this module only computes them another way.

Only histories that need nothing corrected or reported are derived here: the item has a
creation date no later than `now`, every change is dated at or after the one before it (the
first at or after creation) and no later than `now`, every status has a category and (when
stages are configured) a stage, the history ends in the item's current status, and the facts
raise no problem. Every other item (a few per thousand in a real portfolio) goes through
`facts.flow_of`, the reference walk, so its facts and problems are the reference's by
construction. A test compares both paths on hand-built and random histories.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import partial
from itertools import repeat
from operator import attrgetter
from typing import NamedTuple

import numpy as np

from spm_sync.core.domain import ItemRef
from spm_sync.core.history import FlowItem
from spm_sync.engines.bulk import paused_gc
from spm_sync.engines.flow.facts import ItemFlow, flow_of
from spm_sync.engines.flow.flow_columns import FlowColumns, columns_of_flows, empty_columns, put
from spm_sync.engines.flow.history_arrays import (
    DONE,
    IN_PROGRESS,
    NONE,
    ChangeColumns,
    Flags,
    HistoryArrays,
    Ints,
    columns_of_items,
    history_arrays,
)
from spm_sync.engines.flow.settings import FlowSettings, FlowStart
from spm_sync.engines.flow.statuses import StatusBook, status_books

_NEW_FLOW = partial(tuple.__new__, ItemFlow)
"""An `ItemFlow` from a tuple of its fields, without the named tuple's Python `__new__`."""
_ITEM_FIELDS = tuple(map(attrgetter, ("ref", "value_streams", "status", "created")))
_REF = attrgetter("ref")
_TYPE = attrgetter("type")


@paused_gc()
def derive_flows_fast(
    items: Iterable[FlowItem], settings: FlowSettings, now: datetime
) -> dict[ItemRef, ItemFlow]:
    """`facts.derive_flows`: the same facts in the same order, computed with arrays."""
    items = list(items)
    books = status_books(items, settings)
    flows: list[ItemFlow | None] = [None] * len(items)
    for connection, book in books.items():
        indexes = [i for i, item in enumerate(items) if item.ref[0] == connection]
        members = [items[i] for i in indexes]
        columns = columns_of_items(members)
        derived = (
            [flow_of(item, book, settings, now) for item in members]
            if columns is None
            else connection_flows(members, columns, book, settings, now).flows
        )
        for i, flow in zip(indexes, derived, strict=True):
            flows[i] = flow
    return dict(zip(map(_REF, items), flows, strict=True))


class ConnectionFlows(NamedTuple):
    """One connection's flows in the order of its items, and the same facts as the flow
    table's columns (`flow_columns`: handed over, not read back from the flows)."""

    flows: list[ItemFlow]
    columns: FlowColumns


def connection_flows(
    items: Sequence[FlowItem],
    columns: ChangeColumns,
    book: StatusBook,
    settings: FlowSettings,
    now: datetime,
) -> ConnectionFlows:
    """One connection's flows, in the order of `items`, their changes in `columns` (the
    items' own `changes` are not read): the clean histories' from arrays, every other item's
    from the reference walk."""
    stages = [stage.name for stage in settings.stage_map.stages]
    arrays = history_arrays(items, columns, book, stages, now)
    flows: list[ItemFlow | None] = [None] * len(items)
    table = empty_columns(len(items))
    if arrays is not None:
        clean = _clean_flows(items, columns, arrays, _walks(arrays, settings), book, settings)
        for i, flow in zip(clean.indexes, clean.flows, strict=True):
            flows[i] = flow
        put(table, clean.indexes, clean.columns)
    starts = (np.cumsum(columns.counts) - columns.counts).tolist()
    counts = columns.counts.tolist()
    by_walk = [i for i, flow in enumerate(flows) if flow is None]
    result = [
        flow
        if flow is not None
        else flow_of(
            item._replace(changes=columns.changes_of(item, start, count)), book, settings, now
        )
        for item, flow, start, count in zip(items, flows, starts, counts, strict=True)
    ]
    if by_walk:
        # The reference walk's few items: their entries read from their flows.
        put(table, by_walk, columns_of_flows([result[i] for i in by_walk]))
    return ConnectionFlows(result, table)


class _Walks(NamedTuple):
    """What each walked item's history says, one array entry per item with a history.
    Positions are indexes into the connection's changes."""

    clean: Flags
    """The history needs no correction and names no status without category or stage."""
    first_progress: Ints
    """Position of the first change into progress; the number of changes when there is none."""
    started_at_creation: Flags
    ends_done: Flags
    done_from: Ints
    """Position of the first change of the final run of done."""
    done_at_creation: Flags
    """The final run of done reaches back to a done status at creation."""
    was_done: Flags
    last_stage: Ints
    last_move: Ints
    """Position of the last change of stage; below the item's first change when none."""
    active_us: Ints
    wait_us: Ints


def _walks(arrays: HistoryArrays, settings: FlowSettings) -> _Walks:
    """`facts._walk` for every walked history at once (see there for the rules)."""
    total = len(arrays.at)
    starts, ends, owner = arrays.starts, arrays.ends, arrays.owner
    category, status, at = arrays.category, arrays.status, arrays.at
    meaning = arrays.meaning
    before = arrays.before
    has_before = before != NONE
    safe_before = np.where(has_before, before, 0)
    before_category = np.where(has_before, meaning.category[safe_before], NONE)
    before_stage = np.where(has_before, meaning.stage[safe_before], NONE)
    before_active = has_before & meaning.active[safe_before]
    before_waiting = has_before & meaning.wait[safe_before]
    before_unmapped = has_before & meaning.unmapped[safe_before]

    # Each change's segment starts at the change before it, the first change's at creation.
    first = np.zeros(total, dtype=np.bool_)
    first[starts] = True
    previous_at = np.empty(total, np.int64)
    previous_at[1:] = at[:-1]
    previous_at[starts] = arrays.created
    noteworthy = (category < 0) | meaning.unmapped[status]
    clean = (
        arrays.created_known
        & (arrays.created <= arrays.now)
        & (at[ends] <= arrays.now)
        & ~np.logical_or.reduceat((at < previous_at) | noteworthy, starts)
        & ~before_unmapped
    )

    positions = np.arange(total, dtype=np.int64)
    in_progress = np.where(category == IN_PROGRESS, positions, total)
    first_progress = np.minimum.reduceat(in_progress, starts)
    started_at_creation = before_category == IN_PROGRESS
    if settings.measures_efficiency:
        # A change's segment counts once the flow has started before it.
        from_start = started_at_creation | (settings.start is FlowStart.CREATED)
        counting = from_start[owner] | (first_progress[owner] < positions)
        previous_status = np.empty(total, np.int64)
        previous_status[1:] = status[:-1]
        previous_status[starts] = 0  # not read: the first change's previous is `before`
        was_active = np.where(first, before_active[owner], meaning.active[previous_status])
        was_waiting = np.where(first, before_waiting[owner], meaning.wait[previous_status])
        segment = at - previous_at
        active_us = np.add.reduceat(np.where(counting & was_active, segment, 0), starts)
        waiting = counting & ~was_active & was_waiting
        wait_us = np.add.reduceat(np.where(waiting, segment, 0), starts)
    else:
        active_us = wait_us = np.zeros(len(starts), np.int64)

    last_not_done = np.maximum.reduceat(np.where(category != DONE, positions, -1), starts)
    run_from_creation = last_not_done < starts
    stage = meaning.stage[status]
    previous_stage = np.empty(total, np.int64)
    previous_stage[1:] = stage[:-1]
    previous_stage[starts] = before_stage
    moves = np.where(stage != previous_stage, positions, -1)
    return _Walks(
        clean=clean,
        first_progress=first_progress,
        started_at_creation=started_at_creation,
        ends_done=category[ends] == DONE,
        done_from=np.where(run_from_creation, starts, last_not_done + 1),
        done_at_creation=run_from_creation & (before_category == DONE),
        was_done=(before_category == DONE) | np.logical_or.reduceat(category == DONE, starts),
        last_stage=stage[ends],
        last_move=np.maximum.reduceat(moves, starts),
        active_us=active_us,
        wait_us=wait_us,
    )


class _Clean(NamedTuple):
    """The flows derived from arrays: their indexes in the items, the flows, their columns."""

    indexes: list[int]
    flows: list[ItemFlow]
    columns: FlowColumns


def _clean_flows(
    items: Sequence[FlowItem],
    columns: ChangeColumns,
    arrays: HistoryArrays,
    walks: _Walks,
    book: StatusBook,
    settings: FlowSettings,
) -> _Clean:
    """`facts.flow_of` for the walked items whose facts need no correction and raise no
    problem; the others are left to the reference walk."""
    total = len(arrays.at)
    starts, ends, walked = arrays.starts, arrays.ends, arrays.walked
    meaning = arrays.meaning
    current = arrays.current[walked]
    # The item's category now: its stage's, else the tracker's.
    current_category = np.where(
        meaning.stage_category[current] != NONE,
        meaning.stage_category[current],
        arrays.current_told[walked],
    )
    started_known = walks.started_at_creation | (walks.first_progress < total)
    from_created = settings.start is FlowStart.CREATED
    is_done = current_category == DONE
    in_progress = current_category == IN_PROGRESS
    eligible = (
        walks.clean
        & ~meaning.unmapped[current]
        & (current_category >= 0)
        # The history ends in the status the item is in now (the partial-history problem).
        & (meaning.fold[arrays.status[ends]] == meaning.fold[current])
        # Done needs its done time from the history, and a start unless flow starts at creation.
        & ~(is_done & ~(walks.ends_done & (started_known | from_created)))
        # In progress needs its start from the history.
        & ~(~is_done & in_progress & ~started_known)
    )
    # The open item has been in its last status since the last change: that counts too.
    counts_open = ~is_done & (started_known | from_created)
    last = arrays.status[ends]
    open_seconds = (arrays.now - arrays.at[ends]) / 1e6
    active = walks.active_us / 1e6
    wait = walks.wait_us / 1e6
    add_active = counts_open & meaning.active[last]
    add_wait = counts_open & ~meaning.active[last] & meaning.wait[last]
    active = np.where(add_active, active + open_seconds, active)
    wait = np.where(add_wait, wait + open_seconds, wait)
    wip = ~is_done & (started_known | walks.was_done | in_progress)
    current_stage = meaning.stage[current]
    entered_known = (current_stage != NONE) & (walks.last_stage == current_stage)

    # Each time is the position of a change, or AT_CREATION, or NOTHING (None).
    started = np.where(
        walks.started_at_creation,
        _AT_CREATION,
        np.where(walks.first_progress < total, walks.first_progress, _NOTHING),
    )
    done = np.where(
        is_done, np.where(walks.done_at_creation, _AT_CREATION, walks.done_from), _NOTHING
    )
    moved = walks.last_move >= starts
    entered = np.where(entered_known, np.where(moved, walks.last_move, _AT_CREATION), _NOTHING)

    chosen = np.flatnonzero(eligible)
    indexes = walked[chosen].tolist()
    picked = list(map(items.__getitem__, indexes))
    # One pass per field: transposing with zip(*rows) costs far more at this size.
    refs, streams, statuses, created = (list(map(field, picked)) for field in _ITEM_FIELDS)
    classes = {kind: book.flow_class(kind) for kind in set(map(_TYPE, picked))}
    flow_classes = list(map(classes.__getitem__, map(_TYPE, picked)))
    stage_names = [m.stage for m in meaning.meanings]
    started, done, entered = started[chosen], done[chosen], entered[chosen]
    is_done, wip = is_done[chosen], wip[chosen]
    active, wait = active[chosen], wait[chosen]
    started_at, done_at, entered_at = _moments((started, done, entered), created, columns)
    flows = map(
        _NEW_FLOW,
        zip(
            refs,
            flow_classes,
            streams,
            statuses,
            map(stage_names.__getitem__, current[chosen].tolist()),
            created,
            started_at,
            done_at,
            is_done.tolist(),
            wip.tolist(),
            entered_at,
            active.tolist(),
            wait.tolist(),
            repeat(()),
            strict=False,
        ),
    )
    created_us = arrays.created[chosen]
    return _Clean(
        indexes,
        list(flows),
        FlowColumns(
            flow_classes,
            wip,
            is_done,
            active,
            wait,
            np.ones(len(chosen), np.bool_),  # a clean history's item has its creation date
            created_us,
            *_microseconds(started, created_us, arrays.at),
            *_microseconds(done, created_us, arrays.at),
        ),
    )


_AT_CREATION = -1
_NOTHING = -2


def _moments(
    positions: Sequence[Ints], created: Sequence[datetime | None], columns: ChangeColumns
) -> list[list[datetime | None]]:
    """The datetimes of each array of positions (see `_clean_flows`; all of one length, an
    entry per item), each item's creation taken from `created`. A change named by several
    arrays (a done item entered its stage when it was done) gets one datetime for all."""
    count = len(created)
    stacked = np.concatenate(positions)
    of_change = np.flatnonzero(stacked >= 0)
    changes, inverse = np.unique(stacked[of_change], return_inverse=True)
    made = np.empty(len(changes), dtype=object)
    made[:] = columns.moments_of(changes)
    result = np.full(len(stacked), None, dtype=object)
    result[of_change] = made[inverse]
    at_creation = np.flatnonzero(stacked == _AT_CREATION).tolist()
    result[at_creation] = [created[i % count] for i in at_creation]
    return [result[n * count : (n + 1) * count].tolist() for n in range(len(positions))]


def _microseconds(positions: Ints, created_us: Ints, at: Ints) -> tuple[Flags, Ints]:
    """Which positions (see `_clean_flows`) name a time, and the time in epoch microseconds
    (0 where none), as `flow_columns.times` reads it from the datetimes `_moments` makes."""
    known = positions != _NOTHING
    values = np.where(
        positions >= 0,
        at[np.maximum(positions, 0)],
        np.where(positions == _AT_CREATION, created_us, 0),
    )
    return known, values
