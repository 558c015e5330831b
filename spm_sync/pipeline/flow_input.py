"""What the flow engine reads, made from the store: each measured item with its status history
and value streams, and each item's flow facts, one connection at a time.

Memory. A portfolio holds millions of status changes; only the flow facts (`ItemFlow`, a few
hundred bytes an item, no history) are kept across connections. One connection's items are
given their history (read from the store grouped per item, only the keys measured), turned
into facts, and released before the next connection is read, so the peak holds one
connection's history, never the portfolio's. A connection's items must be derived together:
the meaning of a status name a change does not categorise comes from that connection's other
items (`spm_sync.engines.flow.statuses`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from spm_sync.config.flow import FlowConfig, ValueStreams
from spm_sync.core.domain import ItemRef, WorkItem
from spm_sync.core.history import FlowItem, FlowProblem, merge_moved
from spm_sync.engines.flow.facts import ItemFlow, derive_flows
from spm_sync.engines.flow.settings import FlowSettings
from spm_sync.store import Store

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
    """Every measured item's flow facts, and the problems found merging moved items."""

    flows: dict[ItemRef, ItemFlow] = field(default_factory=dict)
    problems: list[FlowProblem] = field(default_factory=list)
    items_with_history: int = 0


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
    """Flow facts of every item given, read and derived a connection at a time."""
    measured = MeasuredFlows()
    streams_of = value_streams_of(config.value_streams)
    levels = sorted({int(level) for level in config.levels})
    for connection, items in items_by_connection.items():
        flow_items, with_history = _flow_items(store, connection, items, streams_of, levels)
        merged, problems = merge_moved(flow_items)
        del flow_items
        measured.flows.update(derive_flows(merged, settings, now))
        measured.problems.extend(problems)
        measured.items_with_history += with_history
    return measured


def _flow_items(
    store: Store,
    connection: str,
    items: list[WorkItem],
    streams_of: StreamsOf,
    levels: list[int],
) -> tuple[list[FlowItem], int]:
    """The connection's items with their stored history; and how many had any. The store
    picks the measured levels' rows; `keys` then keeps exactly the items given."""
    by_key = {item.key: item for item in items}
    histories = {
        ref[1]: changes
        for ref, changes in store.iter_status_histories(
            connection, keys=by_key.keys(), levels=levels
        )
    }
    history_of = histories.pop
    # Positional: one FlowItem per measured item (hundreds of thousands), in field order
    # ref, type, created, status, status_category, changes, value_streams.
    flow_items = [
        FlowItem(
            (connection, item.key),
            item.type,
            item.created,
            item.status,
            item.status_category,
            history_of(item.key, ()),
            streams_of(item),
        )
        for item in items
    ]
    return flow_items, sum(1 for item in flow_items if item.changes)
