"""Flow metrics of many groups over one table of the items' flow facts, by item index.

`metrics.flow_metrics_by_group` reads each membership as a dictionary lookup of a
`(connection, key)` tuple and sums per group in Python: with 200,000 items in 80 groups that
is half a million scattered reads. Here each item's share of the metrics (done within the
window and in which week, flow time, active and measured time, in progress and its age) is an
entry of arrays built once, a group is an array of item indexes, and its metrics are a few
array operations. The numbers are `metrics`'s own: the same floating-point operations in the
same order (sums are taken by Python's `sum` in member order), percentiles by the same
function, ties in the ageing list broken by the item ref as there. A test compares both.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from datetime import date, datetime, timedelta
from functools import partial
from operator import attrgetter, is_not
from typing import TypeVar

import numpy as np

from spm_sync.core.domain import ItemRef
from spm_sync.engines.bulk import paused_gc
from spm_sync.engines.flow.facts import ItemFlow
from spm_sync.engines.flow.flow_columns import FlowColumns, columns_of_flows
from spm_sync.engines.flow.forecast import ObjectiveOutlook
from spm_sync.engines.flow.history_arrays import Flags, Ints, microseconds
from spm_sync.engines.flow.metrics import (
    PERCENTS,
    AgeingItem,
    FlowMetrics,
    Percentiles,
    percentiles,
)
from spm_sync.engines.flow.settings import FlowClass, FlowSettings, FlowStart

G = TypeVar("G", bound=Hashable)

_DAY = 86400.0
_KNOWN = partial(is_not, None)
_STREAMS = attrgetter("value_streams")


class FlowTable:
    """The items' flow facts as arrays indexed by item (in the order of `flows`)."""

    def __init__(
        self,
        flows: Mapping[ItemRef, ItemFlow],
        settings: FlowSettings,
        now: datetime,
        columns: FlowColumns | None = None,
    ):
        """`columns`, when given, are the flows' own (`flow_columns`: one entry per flow, in
        the order of `flows`); else they are read from the flows."""
        self.flows = flows
        self.settings = settings
        self.now = now
        self.refs: list[ItemRef] = list(flows)
        self.index: dict[ItemRef, int] = dict(zip(self.refs, range(len(self.refs)), strict=True))
        self.weeks = math.ceil(settings.window_days / 7)
        if columns is None:
            columns = columns_of_flows(list(flows.values()))
        elif len(columns.wip) != len(self.refs):
            raise ValueError(f"{len(columns.wip)} columns' entries for {len(self.refs)} flows")
        classes = columns.flow_class
        count = len(classes)
        self.classes: list[FlowClass] = list(dict.fromkeys(classes))
        code = {flow_class: n for n, flow_class in enumerate(self.classes)}
        self.flow_class: Ints = np.fromiter(map(code.__getitem__, classes), np.int64, count)
        self.wip: Flags = columns.wip
        self.is_done: Flags = columns.is_done
        now_us = int(microseconds((now,), 1)[0])
        since_us = int(microseconds((now - timedelta(days=settings.window_days),), 1)[0])

        done_known, done_us = columns.done_known, columns.done_us
        self.done_in_window: Flags = done_known & (done_us > since_us) & (done_us <= now_us)
        elapsed = ((now_us - done_us) / 1e6) // (7 * _DAY)
        last_week = self.weeks - 1
        self.week: Ints = last_week - np.minimum(last_week, elapsed.astype(np.int64))
        self.active = columns.active
        self.measured = columns.active + columns.wait

        created_known, created_us = columns.created_known, columns.created_us
        started_known, started_us = columns.started_known, columns.started_us
        from_created = settings.start is FlowStart.CREATED
        # Flow time (done items) and age (items in progress), from their flow start.
        start_known, start_us = (
            (created_known, created_us) if from_created else (started_known, started_us)
        )
        days = ((done_us - start_us) / 1e6) / _DAY
        self.has_flow_days: Flags = done_known & start_known
        self.flow_days = np.where(days > 0.0, days, 0.0)
        begin_known = created_known if from_created else started_known | created_known
        begin_us = created_us if from_created else np.where(started_known, started_us, created_us)
        age = ((now_us - begin_us) / 1e6) / _DAY
        self.aged: Flags = self.wip & begin_known
        self.minus_age = -np.where(age > 0.0, age, 0.0)

    def members(self, refs: Iterable[ItemRef]) -> Ints:
        """The indexes of the refs with flow facts, each once, in the order given (each ref
        hashed once: a ref tuple's hash is not cached)."""
        found = dict.fromkeys(filter(_KNOWN, map(self.index.get, refs)))
        return np.fromiter(found, np.int64, len(found))

    def metrics(self, members: Ints) -> FlowMetrics:
        """`metrics._Prepared.metrics` of the group of these item indexes."""
        settings = self.settings
        done = members[self.done_in_window[members]]
        in_progress = members[self.wip[members]]
        weekly = np.bincount(self.week[done], minlength=self.weeks)
        flow_time = percentiles(self.flow_days[done[self.has_flow_days[done]]].tolist())
        efficiency = None
        if settings.measures_efficiency and len(done):
            measured = sum(self.measured[done].tolist())
            if measured > 0:
                efficiency = sum(self.active[done].tolist()) / measured
        aged = in_progress[self.aged[in_progress]]
        over_p85 = 0
        if flow_time is not None:
            over_p85 = int(np.count_nonzero(self.minus_age[aged] < -flow_time.p85))
        return FlowMetrics(
            items=len(members),
            done=len(done),
            flow_time=flow_time,
            velocity_per_week=len(done) * 7.0 / settings.window_days,
            weekly_throughput=tuple(weekly.tolist()),
            load=len(in_progress),
            efficiency=efficiency,
            distribution=self._counts(done),
            wip_distribution=self._counts(in_progress),
            ageing=self._ageing(aged, flow_time),
            ageing_over_p85=over_p85,
        )

    def outlook(self, objective_id: str, members: Ints, target: date | None) -> ObjectiveOutlook:
        """`forecast.outlooks_from_flows` of one objective (weekly buckets)."""
        done = members[self.done_in_window[members]]
        return ObjectiveOutlook(
            objective_id,
            remaining=int(np.count_nonzero(~self.is_done[members])),
            throughput=tuple(np.bincount(self.week[done], minlength=self.weeks).tolist()),
            target=target,
            bucket_days=7,
        )

    def _counts(self, members: Ints) -> dict[FlowClass, int]:
        """Members per flow class, classes in order of first appearance (as `Counter`)."""
        codes = self.flow_class[members]
        if not len(codes):
            return {}
        found, first, counts = np.unique(codes, return_index=True, return_counts=True)
        order = np.argsort(first, kind="stable")
        return {self.classes[int(found[n])]: int(counts[n]) for n in order}

    def _ageing(self, aged: Ints, flow_time: Percentiles | None) -> tuple[AgeingItem, ...]:
        """The oldest items in progress, oldest first, ties by ref (`heapq.nsmallest` on
        (minus age, ref) there): every item as old as the n-th oldest is a candidate."""
        named = self.settings.ageing_named
        if named <= 0 or not len(aged):
            return ()
        minus_age = self.minus_age[aged]
        if len(aged) > named:
            bound = np.partition(minus_age, named - 1)[named - 1]
            aged = aged[minus_age <= bound]
            minus_age = self.minus_age[aged]
        refs = self.refs
        oldest = sorted(zip(minus_age.tolist(), (refs[i] for i in aged.tolist()), strict=True))
        result = []
        for minus, ref in oldest[:named]:
            age = -minus
            exceeds = None
            if flow_time is not None:
                for percent, limit in zip(PERCENTS, flow_time[:3], strict=True):
                    if age > limit:
                        exceeds = percent
            flow = self.flows[ref]
            result.append(AgeingItem(ref, age, flow.status, flow.stage, exceeds))
        return tuple(result)


@paused_gc()
def metrics_by_group(table: FlowTable, groups: Mapping[G, Ints]) -> dict[G, FlowMetrics]:
    """`metrics.flow_metrics_by_group` over a table, each group given as item indexes."""
    return {group: table.metrics(members) for group, members in groups.items()}


def value_stream_members(table: FlowTable) -> dict[str, Ints]:
    """`metrics.value_stream_groups`, as item indexes (one pass over the flows: each pass
    over objects on a large heap costs more than the work done in it)."""
    groups: dict[str, list[int]] = {}
    for n, streams in enumerate(map(_STREAMS, table.flows.values())):
        # Most items are on one stream: only a longer tuple can name one twice.
        for stream in dict.fromkeys(streams) if len(streams) > 1 else streams:
            groups.setdefault(stream, []).append(n)
    return {stream: np.array(members, np.int64) for stream, members in groups.items()}
