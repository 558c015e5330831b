"""What the flow engine reads, made from the store: each measured item with its status history
and value streams, and each item's flow facts, one connection at a time.

Memory. A portfolio holds millions of status changes; only the flow facts (`ItemFlow`, a few
hundred bytes an item, no history) are kept across connections. One connection's history is
read from the store as columns (item keys, epoch microseconds, status codes: no object per
change; only the keys measured), turned into facts, and released before the next connection
is read, so the peak holds one connection's history, never the portfolio's. A connection's
items must be derived together: the meaning of a status name a change does not categorise
comes from that connection's other items (`spm_sync.engines.flow.statuses`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from itertools import repeat
from operator import attrgetter, itemgetter

import numpy as np

from spm_sync.config.flow import FlowConfig, ValueStreams
from spm_sync.core.domain import ItemRef, WorkItem
from spm_sync.core.history import FlowItem, FlowProblem
from spm_sync.engines.flow.facts import ItemFlow
from spm_sync.engines.flow.fast_facts import connection_flows
from spm_sync.engines.flow.flow_columns import FlowColumns, joined
from spm_sync.engines.flow.history_arrays import CATEGORY_CODE, NONE, ChangeColumns
from spm_sync.engines.flow.settings import FlowSettings
from spm_sync.engines.flow.statuses import StatusBook
from spm_sync.store import Store
from spm_sync.store.history import CATEGORY_ORDER, StatusColumns

_STORE_CATEGORY = np.array([CATEGORY_CODE[category] for category in CATEGORY_ORDER], np.int64)
"""A category's code by its place in the store's `CATEGORY_ORDER`."""

StreamsOf = Callable[[WorkItem], tuple[str, ...]]


def value_streams_of(settings: ValueStreams) -> StreamsOf:
    """The function naming an item's value streams as configured (`flow.value_streams`).

    Azure DevOps keeps the team project in `project` and the area path in `team`; a Jira item's
    `team` is its project, so `area_path` groups Jira items by project.
    """
    by = settings.by
    if by == "project":
        return lambda item: (item.project,) if item.project else ()
    if by == "area_path":
        return lambda item: (item.team,) if item.team else ()
    if by == "component":
        return lambda item: tuple(dict.fromkeys(item.components))
    if by == "connection":
        return lambda item: (item.connection,)
    prefix = (settings.label_prefix or "").casefold()
    cut = len(prefix)

    def labelled(item: WorkItem) -> tuple[str, ...]:
        names = (label[cut:] for label in item.labels if label.casefold().startswith(prefix))
        return tuple(dict.fromkeys(name for name in names if name))

    return labelled


@dataclass
class MeasuredFlows:
    """Every measured item's flow facts, and the problems found merging moved items.
    `columns` are the same facts as the flow table reads them, an entry per flow in the order
    of `flows` (None when they could not be laid in that order: a ref given twice)."""

    flows: dict[ItemRef, ItemFlow] = field(default_factory=dict)
    problems: list[FlowProblem] = field(default_factory=list)
    items_with_history: int = 0
    columns: FlowColumns | None = None


def measured_items(items: Iterable[WorkItem], config: FlowConfig) -> list[WorkItem]:
    """The items flow measures: those of the configured levels."""
    levels = set(config.levels)
    return [item for item in items if item.level in levels]


def derive_all_flows(
    store: Store,
    items_by_connection: Mapping[str, list[WorkItem]],
    config: FlowConfig,
    settings: FlowSettings,
    now: datetime,
) -> MeasuredFlows:
    """Flow facts of every item given, read and derived a connection at a time.

    The history is read as columns (`Store.read_status_columns`): no object per change, and
    the facts computed on arrays (`flow.fast_facts`). The items built here carry no former
    keys (the store does not record moves), so `merge_moved` has nothing to fold."""
    measured = MeasuredFlows()
    streams_of = value_streams_of(config.value_streams)
    levels = sorted({int(level) for level in config.levels})
    parts: list[FlowColumns] = []
    entries = 0
    for connection, items in items_by_connection.items():
        flow_items = _flow_items(connection, items, streams_of)
        stored = store.read_status_columns(
            connection, keys=set(map(_WORK_ITEM_KEY, items)), levels=levels
        )
        columns = columns_of_store(flow_items, stored)
        del stored
        book = StatusBook(flow_items, settings, stated=columns.stated)
        derived = connection_flows(flow_items, columns, book, settings, now)
        measured.flows.update(zip(map(_REF, flow_items), derived.flows, strict=True))
        measured.items_with_history += int(np.count_nonzero(columns.counts))
        parts.append(derived.columns)
        entries += len(flow_items)
    if entries == len(measured.flows):
        # Every ref once: the flows' order is the items' order, the columns' order.
        measured.columns = joined(parts)
    return measured


_REF = attrgetter("ref")
_KEY = itemgetter(1)
"""The key of a ref."""


def _flow_items(connection: str, items: list[WorkItem], streams_of: StreamsOf) -> list[FlowItem]:
    """The connection's items as the flow engine sees them; their changes come as columns."""
    # One FlowItem per measured item (hundreds of thousands): all nine fields in order, made
    # without the named tuple's Python __new__, in one pass over the items (each pass over
    # objects spread on a large heap costs more than the work done in it).
    new = _NEW_FLOW_ITEM
    return [
        new(
            (
                (connection, item.key),
                item.type,
                item.created,
                item.status,
                item.status_category,
                (),
                streams_of(item),
                None,
                (),
            )
        )
        for item in items
    ]


_NEW_FLOW_ITEM = partial(tuple.__new__, FlowItem)
_WORK_ITEM_KEY = attrgetter("key")


def columns_of_store(items: Sequence[FlowItem], stored: StatusColumns) -> ChangeColumns:
    """The store's columns (item by item in key order) gathered into the order of `items`;
    a key given twice gets its history once, at its first item (as `flow_input` gives it)."""
    read_counts = np.array(stored.counts, np.int64)
    read_starts = np.cumsum(read_counts) - read_counts
    # Each item's place in the read order, popped: a key's history goes to one item only.
    place = dict(zip(stored.keys, range(len(stored.keys)), strict=True))
    keys = map(_KEY, map(_REF, items))
    taken = np.fromiter(map(place.pop, keys, repeat(-1)), np.int64, len(items))
    found = taken >= 0
    counts = np.zeros(len(items), np.int64)
    old_starts = np.zeros(len(items), np.int64)
    counts[found] = read_counts[taken[found]]
    old_starts[found] = read_starts[taken[found]]
    new_starts = np.cumsum(counts) - counts
    used = taken[found]
    at, from_status, to_status, told = (
        np.frombuffer(column, np.int64)
        for column in (stored.at, stored.from_status, stored.to_status, stored.to_category)
    )
    if not (len(used) == len(stored.keys) and np.array_equal(used, np.arange(len(used)))):
        # The items are not in the order read (by key): gather their slices into theirs.
        gather = np.arange(int(counts.sum()), dtype=np.int64) + np.repeat(
            old_starts - new_starts, counts
        )
        at, from_status, to_status, told = (a[gather] for a in (at, from_status, to_status, told))
    told = np.where(told == NONE, NONE, _STORE_CATEGORY[np.maximum(told, 0)])
    return ChangeColumns(
        counts=counts,
        at=at,
        from_status=from_status,
        to_status=to_status,
        told=told,
        names=stored.names,
        moments=None,
    )
