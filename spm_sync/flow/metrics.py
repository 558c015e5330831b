"""Flow metrics of any grouping of items: flow time, velocity, load, efficiency, distribution
and ageing work in progress.

The caller decides the groups (objectives, Key Results, value streams...) as group → item refs;
an item may be in several. Each item's per-run figures are computed once and shared by all its
groups, so the cost is one pass over the items plus one cheap pass per membership.

Percentiles are nearest-rank: the p-th percentile of n sorted values is the value at 1-based
rank ceil(p/100 · n). It is always a value that occurred (a real item's flow time), which is
what a reader can check against the list, and it needs no interpolation rule.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import itemgetter
from typing import NamedTuple, TypeVar

from spm_sync.bulk import paused_gc
from spm_sync.flow.facts import ItemFlow
from spm_sync.flow.history import ItemRef
from spm_sync.flow.settings import FlowClass, FlowSettings, FlowStart

G = TypeVar("G", bound=Hashable)

PERCENTS = (50, 85, 95)
_DAY = 86400.0


class Percentiles(NamedTuple):
    """Nearest-rank percentiles of flow time in days, over `sample_size` items."""

    p50: float
    p85: float
    p95: float
    sample_size: int


def nearest_rank(sorted_values: Sequence[float], percent: float) -> float:
    """The nearest-rank percentile of values sorted ascending (at least one value)."""
    rank = max(1, math.ceil(percent / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def percentiles(values: Iterable[float]) -> Percentiles | None:
    ordered = sorted(values)
    if not ordered:
        return None
    p50, p85, p95 = (nearest_rank(ordered, p) for p in PERCENTS)
    return Percentiles(p50, p85, p95, len(ordered))


def throughput(
    done_times: Iterable[datetime], now: datetime, days: int, bucket_days: int = 7
) -> tuple[int, ...]:
    """Items done per bucket over the `days` before `now`, oldest bucket first.

    Buckets end at `now` and run backwards, so the last bucket is the latest full week (or day);
    when `days` is not a multiple of `bucket_days` the oldest bucket is the short one.
    """
    buckets = [0] * math.ceil(days / bucket_days)
    since = now - timedelta(days=days)
    width = bucket_days * _DAY
    last = len(buckets) - 1
    for done in done_times:
        if since < done <= now:
            buckets[last - min(last, int((now - done).total_seconds() // width))] += 1
    return tuple(buckets)


@dataclass(frozen=True, slots=True)
class AgeingItem:
    """An item in progress and how old it is; `exceeds` is the highest flow-time percentile of
    its group (50, 85 or 95) it is already older than, None when below the median or unknown."""

    ref: ItemRef
    age_days: float
    status: str
    stage: str | None
    exceeds: int | None


@dataclass(frozen=True, slots=True)
class FlowMetrics:
    """The flow of one group over the window ending at `now`.

    `done` counts items done within the window with a known done time: they make the flow time,
    velocity, throughput, efficiency and distribution. `load` counts work in progress now.
    `ageing` names the oldest items in progress, oldest first; `ageing_over_p85` counts all
    those already older than the group's 85th percentile flow time.
    """

    items: int
    done: int
    flow_time: Percentiles | None
    velocity_per_week: float
    weekly_throughput: tuple[int, ...]
    load: int
    efficiency: float | None
    distribution: Mapping[FlowClass, int] = field(default_factory=dict)
    wip_distribution: Mapping[FlowClass, int] = field(default_factory=dict)
    ageing: tuple[AgeingItem, ...] = ()
    ageing_over_p85: int = 0


class _Figures(NamedTuple):
    """One item's share of every metric, computed once per run and shared by its groups."""

    flow: ItemFlow
    week: int | None
    """Set only when the item was done within the window: its bucket of `weekly_throughput`."""
    flow_days: float | None
    oldest_first: tuple[float, ItemRef] | None
    """(-age in days, ref) of work in progress with a known start: its ageing sort key."""


_OLDEST_FIRST = itemgetter(3)


def flow_metrics(flows: Iterable[ItemFlow], settings: FlowSettings, now: datetime) -> FlowMetrics:
    """Metrics of one group made of all `flows`."""
    prepared = _Prepared(settings, now)
    return prepared.metrics(list(map(prepared.figures, flows)))


@paused_gc()
def flow_metrics_by_group(
    flows: Mapping[ItemRef, ItemFlow],
    groups: Mapping[G, Iterable[ItemRef]],
    settings: FlowSettings,
    now: datetime,
) -> dict[G, FlowMetrics]:
    """Metrics per group; refs without flow facts are skipped, an item counted once per group."""
    prepared = _Prepared(settings, now)
    figures = {ref: prepared.figures(flow) for ref, flow in flows.items()}
    result: dict[G, FlowMetrics] = {}
    for group, refs in groups.items():
        members = [f for f in map(figures.get, dict.fromkeys(refs)) if f is not None]
        result[group] = prepared.metrics(members)
    return result


def value_stream_groups(flows: Iterable[ItemFlow]) -> dict[str, list[ItemRef]]:
    """Value stream → its items, for `flow_metrics_by_group`."""
    groups: dict[str, list[ItemRef]] = {}
    for flow in flows:
        for stream in flow.value_streams:
            groups.setdefault(stream, []).append(flow.ref)
    return groups


class _Prepared:
    def __init__(self, settings: FlowSettings, now: datetime) -> None:
        self.settings = settings
        self.now = now
        self.since = now - timedelta(days=settings.window_days)
        self.weeks = math.ceil(settings.window_days / 7)
        self.from_created = settings.start is FlowStart.CREATED

    def figures(self, flow: ItemFlow) -> _Figures:
        week = flow_days = oldest_first = None
        done = flow.done
        if done is not None and self.since < done <= self.now:
            flow_days = flow.flow_days(self.settings.start)
            elapsed = int((self.now - done).total_seconds() // (7 * _DAY))
            week = self.weeks - 1 - min(self.weeks - 1, elapsed)
        if flow.wip:
            begin = flow.created if self.from_created else flow.started or flow.created
            if begin is not None:
                age = max(0.0, (self.now - begin).total_seconds() / _DAY)
                oldest_first = (-age, flow.ref)
        return _Figures(flow, week, flow_days, oldest_first)

    def metrics(self, members: list[_Figures]) -> FlowMetrics:
        weekly = [0] * self.weeks
        distribution: Counter[FlowClass] = Counter()
        wip_distribution: Counter[FlowClass] = Counter()
        flow_days: list[float] = []
        active = measured = 0.0
        aged: list[_Figures] = []
        for figures in members:
            flow = figures.flow
            if figures.week is not None:
                weekly[figures.week] += 1
                distribution[flow.flow_class] += 1
                active += flow.active_seconds
                measured += flow.active_seconds + flow.wait_seconds
                if figures.flow_days is not None:
                    flow_days.append(figures.flow_days)
            if flow.wip:
                wip_distribution[flow.flow_class] += 1
                if figures.oldest_first is not None:
                    aged.append(figures)
        done = sum(weekly)
        flow_time = percentiles(flow_days)
        efficiency = None
        if self.settings.measures_efficiency and measured > 0:
            efficiency = active / measured
        over_p85 = 0
        if flow_time is not None:
            # oldest_first holds minus the age: older than p85 is below -p85.
            over_p85 = sum(1 for f in aged if f.oldest_first and f.oldest_first[0] < -flow_time.p85)
        oldest = heapq.nsmallest(self.settings.ageing_named, aged, key=_OLDEST_FIRST)
        return FlowMetrics(
            items=len(members),
            done=done,
            flow_time=flow_time,
            velocity_per_week=done * 7.0 / self.settings.window_days,
            weekly_throughput=tuple(weekly),
            load=sum(wip_distribution.values()),
            efficiency=efficiency,
            distribution=dict(distribution),
            wip_distribution=dict(wip_distribution),
            ageing=tuple(_ageing_item(f, flow_time) for f in oldest),
            ageing_over_p85=over_p85,
        )


def _ageing_item(figures: _Figures, flow_time: Percentiles | None) -> AgeingItem:
    age = -figures.oldest_first[0] if figures.oldest_first else 0.0
    exceeds = None
    if flow_time is not None:
        for percent, limit in zip(PERCENTS, flow_time[:3], strict=True):
            if age > limit:
                exceeds = percent
    flow = figures.flow
    return AgeingItem(flow.ref, age, flow.status, flow.stage, exceeds)
