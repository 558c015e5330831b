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

from spm_sync.core.domain import ItemRef
from spm_sync.engines.bulk import paused_gc
from spm_sync.engines.flow.facts import ItemFlow
from spm_sync.engines.flow.settings import FlowClass, FlowSettings, FlowStart

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


class _Done(NamedTuple):
    """An item done within the window: its share of the throughput, distribution, efficiency
    and flow time (computed once per run and shared by its groups)."""

    week: int
    """Its bucket of `weekly_throughput`."""
    flow_class: FlowClass
    active_seconds: float
    measured_seconds: float
    """Active plus waiting time: efficiency's denominator."""
    flow_days: float | None


class _InProgress(NamedTuple):
    """An item in progress: its share of the load and the ageing list."""

    flow_class: FlowClass
    oldest_first: tuple[float, ItemRef] | None
    """(-age in days, ref) when its start is known: its ageing sort key."""
    flow: ItemFlow


_Shares = tuple[_Done | None, _InProgress | None]
"""An item's shares: done within the window, in progress (an item may be neither)."""

_WEEK = itemgetter(0)
_CLASS = itemgetter(1)
_ACTIVE = itemgetter(2)
_MEASURED = itemgetter(3)
_FLOW_DAYS = itemgetter(4)
_WIP_CLASS = itemgetter(0)
_OLDEST_FIRST = itemgetter(1)


def flow_metrics(flows: Iterable[ItemFlow], settings: FlowSettings, now: datetime) -> FlowMetrics:
    """Metrics of one group made of all `flows`."""
    prepared = _Prepared(settings, now)
    return prepared.metrics(list(prepared.shares(flows).values()))


@paused_gc()
def flow_metrics_by_group(
    flows: Mapping[ItemRef, ItemFlow],
    groups: Mapping[G, Iterable[ItemRef]],
    settings: FlowSettings,
    now: datetime,
) -> dict[G, FlowMetrics]:
    """Metrics per group; refs without flow facts are skipped, an item counted once per group.

    A membership costs one dictionary read, done at C speed (`map`): with hundreds of
    thousands of items in several groups each, reading a ref is what the groups cost."""
    prepared = _Prepared(settings, now)
    shares = prepared.shares(flows.values())
    result: dict[G, FlowMetrics] = {}
    for group, refs in groups.items():
        members = [share for share in map(shares.get, dict.fromkeys(refs)) if share is not None]
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

    def shares(self, flows: Iterable[ItemFlow]) -> dict[ItemRef, _Shares]:
        """Each item's share of the metrics: done within the window, in progress, or neither
        (then it only counts as one of its groups' items)."""
        shares: dict[ItemRef, _Shares] = {}
        since, now, start = self.since, self.now, self.settings.start
        last_week = self.weeks - 1
        for flow in flows:
            done = in_progress = None
            finished = flow.done
            if finished is not None and since < finished <= now:
                elapsed = int((now - finished).total_seconds() // (7 * _DAY))
                active = flow.active_seconds
                done = _Done(
                    last_week - min(last_week, elapsed),
                    flow.flow_class,
                    active,
                    active + flow.wait_seconds,
                    flow.flow_days(start),
                )
            if flow.wip:
                begin = flow.created if self.from_created else flow.started or flow.created
                oldest_first = None
                if begin is not None:
                    oldest_first = (-max(0.0, (now - begin).total_seconds() / _DAY), flow.ref)
                in_progress = _InProgress(flow.flow_class, oldest_first, flow)
            shares[flow.ref] = (done, in_progress)
        return shares

    def metrics(self, members: list[_Shares]) -> FlowMetrics:
        """One group's metrics from its members' shares."""
        done = [share for share, _ in members if share is not None]
        in_progress = [share for _, share in members if share is not None]
        weekly = [0] * self.weeks
        for week, count in Counter(map(_WEEK, done)).items():
            weekly[week] = count
        flow_time = percentiles(d for d in map(_FLOW_DAYS, done) if d is not None)
        efficiency = None
        if self.settings.measures_efficiency and done:
            measured = sum(map(_MEASURED, done))
            if measured > 0:
                efficiency = sum(map(_ACTIVE, done)) / measured
        aged = [share for share in in_progress if share.oldest_first is not None]
        over_p85 = 0
        if flow_time is not None:
            # oldest_first holds minus the age: older than p85 is below -p85.
            limit = -flow_time.p85
            over_p85 = len([key for key in map(_OLDEST_FIRST, aged) if key[0] < limit])
        oldest = heapq.nsmallest(self.settings.ageing_named, aged, key=_OLDEST_FIRST)
        return FlowMetrics(
            items=len(members),
            done=len(done),
            flow_time=flow_time,
            velocity_per_week=len(done) * 7.0 / self.settings.window_days,
            weekly_throughput=tuple(weekly),
            load=len(in_progress),
            efficiency=efficiency,
            distribution=dict(Counter(map(_CLASS, done))),
            wip_distribution=dict(Counter(map(_WIP_CLASS, in_progress))),
            ageing=tuple(_ageing_item(share, flow_time) for share in oldest),
            ageing_over_p85=over_p85,
        )


def _ageing_item(share: _InProgress, flow_time: Percentiles | None) -> AgeingItem:
    age = -share.oldest_first[0] if share.oldest_first else 0.0
    exceeds = None
    if flow_time is not None:
        for percent, limit in zip(PERCENTS, flow_time[:3], strict=True):
            if age > limit:
                exceeds = percent
    flow = share.flow
    return AgeingItem(flow.ref, age, flow.status, flow.stage, exceeds)
