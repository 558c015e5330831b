"""Flow metrics on known data: nearest-rank percentiles, throughput buckets, velocity, load,
efficiency, distribution, ageing work in progress, and groups that share items."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from spm_sync.core.domain import StatusCategory
from spm_sync.core.history import FlowItem, StatusChange
from spm_sync.engines.flow.facts import ItemFlow, derive_flows
from spm_sync.engines.flow.metrics import (
    flow_metrics,
    flow_metrics_by_group,
    nearest_rank,
    percentiles,
    throughput,
    value_stream_groups,
)
from spm_sync.engines.flow.settings import FlowClass, FlowSettings, FlowStart

TODO, DOING, DONE = StatusCategory.TODO, StatusCategory.IN_PROGRESS, StatusCategory.DONE
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def done_item(
    key: str, started: float, done: float, *, kind: str = "Epic", streams: tuple[str, ...] = ()
) -> FlowItem:
    """Created a day before it started; `started` and `done` are days before NOW."""
    ref = ("jira", key)
    changes = (
        StatusChange(ref, ago(started), "Open", "In Progress", DOING),
        StatusChange(ref, ago(done), "In Progress", "Done", DONE),
    )
    return FlowItem(ref, kind, ago(started + 1), "Done", DONE, changes, streams)


def open_item(key: str, started: float, *, streams: tuple[str, ...] = ()) -> FlowItem:
    ref = ("jira", key)
    changes = (StatusChange(ref, ago(started), "Open", "In Progress", DOING),)
    return FlowItem(ref, "Epic", ago(started + 1), "In Progress", DOING, changes, streams)


def flows_of(
    *items: FlowItem, settings: FlowSettings | None = None
) -> dict[tuple[str, str], ItemFlow]:
    return derive_flows(items, settings or FlowSettings(), NOW)


def test_nearest_rank_is_the_value_at_rank_ceil_p_n() -> None:
    values = [float(v) for v in range(1, 21)]  # 1..20
    assert nearest_rank(values, 50) == 10  # ceil(10) = 10th
    assert nearest_rank(values, 85) == 17  # ceil(17) = 17th
    assert nearest_rank(values, 95) == 19  # ceil(19) = 19th
    assert nearest_rank([4.0], 95) == 4
    assert nearest_rank([1.0, 2.0, 3.0], 50) == 2  # ceil(1.5) = 2nd
    assert nearest_rank([1.0, 2.0, 3.0], 0) == 1


def test_percentiles_sort_first_and_are_none_without_values() -> None:
    assert percentiles([9, 1, 5, 3, 7]) == (5, 9, 9, 5)
    assert percentiles([]) is None


def test_throughput_buckets_end_at_now_oldest_first() -> None:
    done = [ago(0.5), ago(6.9), ago(7.0), ago(13), ago(20), ago(22), ago(30)]
    # 21 days in three weeks: [21..14), [14..7), [7..0]; 22 and 30 days ago are outside.
    assert throughput(done, NOW, 21) == (1, 2, 2)
    assert throughput(done, NOW, 3, bucket_days=1) == (0, 0, 1)
    assert throughput([ago(-1)], NOW, 7) == (0,)  # a future date is not throughput


def test_metrics_over_the_window() -> None:
    items = [
        done_item("A-1", started=12, done=10),  # 2 days
        done_item("A-2", started=14, done=10),  # 4 days
        done_item("A-3", started=9, done=3, kind="Bug"),  # 6 days
        done_item("A-4", started=200, done=100),  # before the window: not counted
        open_item("A-5", started=30),
        FlowItem(("jira", "A-6"), "Epic", ago(5), "Open", TODO),  # not started: not load
    ]
    settings = FlowSettings(
        window_days=28, flow_classes={"Bug": FlowClass.DEFECT, "Epic": FlowClass.FEATURE}
    )
    metrics = flow_metrics(flows_of(*items, settings=settings).values(), settings, NOW)
    assert metrics.items == 6
    assert metrics.done == 3
    assert metrics.flow_time == (4, 6, 6, 3)
    assert metrics.velocity_per_week == 3 / 4
    assert metrics.weekly_throughput == (0, 0, 2, 1)
    assert metrics.load == 1
    assert metrics.distribution == {FlowClass.FEATURE: 2, FlowClass.DEFECT: 1}
    assert metrics.wip_distribution == {FlowClass.FEATURE: 1}
    assert metrics.efficiency is None  # no active/wait statuses configured


def test_flow_time_from_creation_when_configured() -> None:
    settings = FlowSettings(start=FlowStart.CREATED, window_days=28)
    metrics = flow_metrics(
        flows_of(done_item("A-1", 12, 10), settings=settings).values(), settings, NOW
    )
    assert metrics.flow_time == (3, 3, 3, 1)


def test_efficiency_is_active_over_active_and_waiting_time_of_items_done() -> None:
    ref = ("jira", "A-1")
    changes = (
        StatusChange(ref, ago(10), "Open", "In Progress", DOING),
        StatusChange(ref, ago(7), "In Progress", "Blocked", DOING),
        StatusChange(ref, ago(6), "Blocked", "In Progress", DOING),
        StatusChange(ref, ago(4), "In Progress", "Done", DONE),
    )
    settings = FlowSettings(
        active_statuses=frozenset({"In Progress"}), wait_statuses=frozenset({"Blocked"})
    )
    flows = derive_flows(
        [FlowItem(ref, "Epic", ago(11), "Done", DONE, changes), open_item("A-2", 3)], settings, NOW
    )
    assert flow_metrics(flows.values(), settings, NOW).efficiency == 5 / 6


def test_ageing_names_the_oldest_wip_and_the_percentile_it_already_exceeds() -> None:
    done = [done_item(f"D-{n}", started=10 + n, done=10) for n in range(1, 21)]  # 1..20 days
    wip = [open_item("W-1", 3), open_item("W-2", 12), open_item("W-3", 18.5), open_item("W-4", 40)]
    settings = FlowSettings(ageing_named=3)
    metrics = flow_metrics(flows_of(*done, *wip).values(), settings, NOW)
    assert metrics.flow_time == (10, 17, 19, 20)
    assert [(a.ref[1], a.age_days, a.exceeds) for a in metrics.ageing] == [
        ("W-4", 40, 95),
        ("W-3", 18.5, 85),
        ("W-2", 12, 50),
    ]
    assert metrics.ageing_over_p85 == 2
    assert metrics.ageing[0].status == "In Progress"


def test_ageing_without_history_of_flow_time_names_no_percentile() -> None:
    metrics = flow_metrics(flows_of(open_item("W-1", 3)).values(), FlowSettings(), NOW)
    assert [(a.ref[1], a.exceeds) for a in metrics.ageing] == [("W-1", None)]
    assert metrics.flow_time is None


def test_groups_share_items_and_skip_unknown_refs() -> None:
    a, b, c = done_item("A-1", 5, 2), done_item("A-2", 9, 1), open_item("A-3", 4)
    flows = flows_of(a, b, c)
    groups = {
        "objective-1": [a.ref, b.ref, ("jira", "GONE-1")],
        "objective-2": [b.ref, c.ref, c.ref],  # a repeated ref counts once
        "empty": [],
    }
    metrics = flow_metrics_by_group(flows, groups, FlowSettings(), NOW)
    assert (metrics["objective-1"].items, metrics["objective-1"].done) == (2, 2)
    assert (metrics["objective-2"].items, metrics["objective-2"].load) == (2, 1)
    assert metrics["objective-2"].flow_time == (8, 8, 8, 1)
    assert metrics["empty"].items == 0
    assert metrics["empty"].velocity_per_week == 0


def test_value_streams_group_items_and_an_item_of_two_streams_counts_in_both() -> None:
    items = [
        done_item("A-1", 5, 2, streams=("Payments",)),
        open_item("A-2", 4, streams=("Payments", "Mobile")),
        open_item("A-3", 4),
    ]
    flows = flows_of(*items)
    groups = value_stream_groups(flows.values())
    assert groups == {
        "Payments": [("jira", "A-1"), ("jira", "A-2")],
        "Mobile": [("jira", "A-2")],
    }
    metrics = flow_metrics_by_group(flows, groups, FlowSettings(), NOW)
    assert (metrics["Payments"].load, metrics["Mobile"].load) == (1, 1)


def test_a_reopened_item_counts_once_at_its_final_done() -> None:
    ref = ("jira", "R-1")
    changes = (
        StatusChange(ref, ago(20), "Open", "In Progress", DOING),
        StatusChange(ref, ago(15), "In Progress", "Done", DONE),
        StatusChange(ref, ago(10), "Done", "In Progress", DOING),
        StatusChange(ref, ago(2), "In Progress", "Done", DONE),
    )
    flows = flows_of(FlowItem(ref, "Epic", ago(21), "Done", DONE, changes))
    metrics = flow_metrics(flows.values(), FlowSettings(window_days=14), NOW)
    assert (metrics.done, metrics.flow_time, metrics.weekly_throughput) == (
        1,
        (18, 18, 18, 1),
        (0, 1),
    )


def test_done_items_without_a_done_time_are_left_out_of_flow_time_and_velocity() -> None:
    flows = flows_of(FlowItem(("jira", "N-1"), "Epic", ago(3), "Done", DONE))
    metrics = flow_metrics(flows.values(), FlowSettings(), NOW)
    assert (metrics.items, metrics.done, metrics.load, metrics.flow_time) == (1, 0, 0, None)


@pytest.mark.parametrize("window", [7, 10, 84])
def test_weekly_throughput_covers_the_window(window: int) -> None:
    metrics = flow_metrics([], FlowSettings(window_days=window), NOW)
    assert len(metrics.weekly_throughput) == -(-window // 7)
