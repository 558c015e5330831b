"""Flow facts from hand-built histories: reopened items, moved items, missing and partial
history, clock skew, statuses mapped to no stage, and the two start definitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from spm_sync.core.domain import StatusCategory
from spm_sync.core.history import FlowItem, StatusChange, group_changes, merge_moved
from spm_sync.engines.flow.facts import ItemFlow, derive_flows, flow_problems
from spm_sync.engines.flow.settings import FlowClass, FlowSettings, FlowStart, Stage, StageMap

TODO, DOING, DONE = StatusCategory.TODO, StatusCategory.IN_PROGRESS, StatusCategory.DONE
T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=100)
CATEGORY = {"Open": TODO, "In Progress": DOING, "Review": DOING, "Blocked": DOING, "Done": DONE}


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def item(
    key: str,
    *moves: tuple[float, str],
    status: str | None = None,
    created: datetime | None = T0,
    start: str = "Open",
    **fields: object,
) -> FlowItem:
    """An item created at T0 in `start`, moved to each status on its day, in order."""
    ref = ("jira", key)
    changes = []
    before = start
    for when, to in moves:
        changes.append(StatusChange(ref, day(when), before, to, CATEGORY.get(to)))
        before = to
    current = status or before
    return FlowItem(
        ref=ref,
        type=str(fields.pop("type", "Epic")),
        created=created,
        status=current,
        status_category=CATEGORY.get(current, TODO),
        changes=tuple(changes),
        **fields,  # type: ignore[arg-type]
    )


def flow_of(one: FlowItem, settings: FlowSettings | None = None) -> ItemFlow:
    return derive_flows([one], settings or FlowSettings(), NOW)[one.ref]


def test_started_is_the_first_move_into_progress_and_done_the_last_into_done() -> None:
    flow = flow_of(item("A-1", (2, "In Progress"), (5, "Review"), (9, "Done")))
    assert (flow.started, flow.done, flow.is_done, flow.wip) == (day(2), day(9), True, False)
    assert flow.flow_days(FlowStart.STARTED) == 7
    assert flow.flow_days(FlowStart.CREATED) == 9
    assert flow.problems == ()


def test_a_reopened_and_finished_again_item_counts_at_its_final_done() -> None:
    flow = flow_of(item("A-1", (2, "In Progress"), (5, "Done"), (7, "In Progress"), (12, "Done")))
    assert (flow.started, flow.done, flow.wip) == (day(2), day(12), False)


def test_a_done_then_reopened_item_still_open_is_wip_again() -> None:
    flow = flow_of(item("A-1", (2, "In Progress"), (5, "Done"), (7, "Open")))
    assert (flow.is_done, flow.done, flow.wip, flow.started) == (False, None, True, day(2))


def test_an_item_done_straight_from_open_has_no_flow_time_when_measured_from_start() -> None:
    flow = flow_of(item("A-1", (4, "Done")))
    assert (flow.started, flow.done, flow.wip) == (None, day(4), False)
    assert flow.flow_days(FlowStart.STARTED) is None
    assert flow.flow_days(FlowStart.CREATED) == 4
    assert flow.problems == ("done without passing an in-progress status: no flow time",)
    assert flow_of(item("A-1", (4, "Done")), FlowSettings(start=FlowStart.CREATED)).problems == ()


def test_an_item_created_in_progress_starts_at_creation() -> None:
    # Another item's move into "In Progress" states that status's category.
    created_busy = item("A-1", (3, "Done"), start="In Progress")
    flows = derive_flows([created_busy, item("A-2", (1, "In Progress"))], FlowSettings(), NOW)
    assert (flows[created_busy.ref].started, flows[created_busy.ref].done) == (T0, day(3))
    alone = flow_of(created_busy)
    assert alone.started is None
    assert alone.problems == ("done without passing an in-progress status: no flow time",)


def test_an_item_never_started_is_neither_wip_nor_done() -> None:
    flow = flow_of(item("A-1", (3, "Open"), start="Open"))
    assert (flow.started, flow.wip, flow.is_done) == (None, False, False)


def test_no_history_falls_back_to_created_and_the_resolution_date_with_reasons() -> None:
    open_item = flow_of(item("A-1", status="In Progress"))
    assert (open_item.started, open_item.wip) == (T0, True)
    assert open_item.problems == ("no status history: started taken as created",)

    resolved = flow_of(item("A-2", status="Done", resolved=day(20)))
    assert (resolved.done, resolved.is_done, resolved.wip) == (day(20), True, False)

    unknown = flow_of(item("A-3", status="Done"))
    assert (unknown.done, unknown.is_done) == (None, True)
    assert "done, but when is unknown: left out of flow time and velocity" in unknown.problems

    waiting = flow_of(item("A-4", status="Open"))
    assert (waiting.started, waiting.wip, waiting.problems) == (None, False, ("no status history",))


def test_partial_history_that_ends_elsewhere_than_the_current_status_is_named() -> None:
    # The tracker kept only the first changes: the item is Done now, its history ends in Review.
    flow = flow_of(item("A-1", (2, "In Progress"), (5, "Review"), status="Done", resolved=day(30)))
    assert (flow.done, flow.is_done) == (day(30), True)
    assert flow.problems == (
        "history ends in 'Review' but the item is in 'Done' now (partial history)",
        "done time taken from the tracker's resolution date",
    )


def test_partial_history_of_an_open_item_in_progress_starts_at_the_last_known_change() -> None:
    flow = flow_of(item("A-1", (2, "Open"), status="In Progress"))
    assert (flow.started, flow.wip) == (day(2), True)
    assert "start not in the history: taken as the last recorded change" in flow.problems


def test_timestamps_going_backwards_in_a_consistent_chain_are_clamped() -> None:
    # Recorded In Progress → Review → Done, but Review carries a clock-skewed earlier time.
    flow = flow_of(item("A-1", (5, "In Progress"), (4, "Review"), (9, "Done")))
    assert (flow.started, flow.done) == (day(5), day(9))
    assert flow.problems == (
        "clock skew: 1 status change(s) dated before the change recorded ahead of them; "
        "taken as at that change",
    )


def test_changes_given_out_of_order_are_sorted_by_time() -> None:
    ref = ("jira", "A-1")
    changes = (
        StatusChange(ref, day(9), "Review", "Done", DONE),
        StatusChange(ref, day(2), "Open", "In Progress", DOING),
        StatusChange(ref, day(5), "In Progress", "Review", DOING),
    )
    flow = flow_of(FlowItem(ref, "Epic", T0, "Done", DONE, changes))
    assert (flow.started, flow.done) == (day(2), day(9))
    assert flow.problems == ("status changes out of order: sorted by time",)


def test_changes_before_creation_or_after_now_are_clamped_with_a_reason() -> None:
    early = flow_of(item("A-1", (-2, "In Progress"), (3, "Done")))
    assert (early.started, early.done) == (T0, day(3))
    assert early.problems == (
        "clock skew: 1 status change(s) dated before the item's creation; taken as at creation",
    )
    late = flow_of(item("A-2", (2, "In Progress"), (150, "Done")))
    assert late.done == NOW
    assert late.problems == ("clock skew: 1 status change(s) dated in the future; taken as now",)


def test_a_creation_date_in_the_future_is_taken_as_now() -> None:
    flow = flow_of(item("A-1", (2, "In Progress"), created=NOW + timedelta(days=3)))
    assert (flow.created, flow.started, flow.wip) == (NOW, NOW, True)
    assert flow.problems == (
        "created in the future (clock skew): taken as now",
        "clock skew: 1 status change(s) dated before the item's creation; taken as at creation",
    )
    bare = flow_of(item("A-2", status="In Progress", created=NOW + timedelta(days=3)))
    assert (bare.created, bare.started) == (NOW, NOW)


def test_no_creation_date_takes_the_first_change() -> None:
    flow = flow_of(item("A-1", (2, "In Progress"), (5, "Done"), created=None))
    assert flow.created == day(2)
    assert flow.flow_days(FlowStart.CREATED) == 3
    assert flow.problems == ("no creation date: the first status change stands for it",)


STAGES = StageMap(
    stages=(
        Stage("Funnel", TODO),
        Stage("Analyzing", DOING),
        Stage("Implementing", DOING),
        Stage("Done", DONE),
    ),
    statuses={
        "open": "Funnel",
        "Analysis": "Analyzing",
        "In Progress": "Implementing",
        "DONE": "Done",
    },
)


def test_statuses_map_to_stages_case_insensitively_and_the_stage_category_wins() -> None:
    # "Analysis" is unknown to the tracker's categories here; its stage says it is in progress.
    flow = flow_of(item("A-1", (2, "Analysis"), (6, "In Progress")), FlowSettings(stage_map=STAGES))
    assert (flow.stage, flow.started, flow.stage_entered, flow.wip) == (
        "Implementing",
        day(2),
        day(6),
        True,
    )
    assert flow.problems == ()


def test_statuses_mapped_to_no_stage_are_reported_per_item_without_crashing() -> None:
    flow = flow_of(
        item("A-1", (2, "In Progress"), (4, "Blocked"), (6, "In Progress")),
        FlowSettings(stage_map=STAGES),
    )
    assert flow.stage == "Implementing"
    assert flow.problems == ("status 'Blocked' is mapped to no stage",)
    lost = flow_of(item("A-2", (2, "Blocked")), FlowSettings(stage_map=STAGES))
    assert (lost.stage, lost.wip, lost.stage_entered) == (None, True, None)
    assert lost.problems == ("status 'Blocked' is mapped to no stage",)


def test_a_status_without_any_known_category_is_taken_as_not_started() -> None:
    ref = ("jira", "A-1")
    changes = (
        StatusChange(ref, day(2), "Open", "Triage"),
        StatusChange(ref, day(3), "Triage", "Open"),
    )
    flow = flow_of(FlowItem(ref, "Epic", T0, "Open", TODO, changes))
    assert flow.started is None
    assert flow.problems == ("status 'Triage' has no known category: taken as not started",)


def test_a_category_seen_on_any_item_serves_changes_that_lack_it() -> None:
    ref = ("jira", "A-1")
    changes = (
        StatusChange(ref, day(2), "Open", "Review"),
        StatusChange(ref, day(4), "Review", "Done"),
    )
    items = [
        FlowItem(ref, "Epic", T0, "Done", DONE, changes),
        FlowItem(("jira", "A-2"), "Epic", T0, "Review", DOING),
    ]
    flow = derive_flows(items, FlowSettings(), NOW)[ref]
    assert (flow.started, flow.done) == (day(2), day(4))


def test_active_and_waiting_time_count_from_the_flow_start_to_done_or_now() -> None:
    settings = FlowSettings(
        active_statuses=frozenset({"in progress"}), wait_statuses=frozenset({"Blocked", "Open"})
    )
    done = flow_of(
        item("A-1", (2, "In Progress"), (5, "Blocked"), (6, "In Progress"), (8, "Done")), settings
    )
    # The two days Open before the start do not count; Done after day 8 is neither.
    assert (done.active_seconds / 86400, done.wait_seconds / 86400) == (5, 1)
    from_created = flow_of(
        item("A-1", (2, "In Progress"), (5, "Done")),
        FlowSettings(start=FlowStart.CREATED, wait_statuses=frozenset({"Open"})),
    )
    assert from_created.wait_seconds / 86400 == 2
    still_open = flow_of(item("A-2", (90, "In Progress")), settings)
    assert still_open.active_seconds / 86400 == 10


def test_flow_classes_map_item_types_case_insensitively() -> None:
    settings = FlowSettings(flow_classes={"bug": FlowClass.DEFECT, "Enabler": FlowClass.DEBT})
    flows = derive_flows(
        [item("A-1", type="Bug"), item("A-2", type="enabler"), item("A-3", type="Epic")],
        settings,
        NOW,
    )
    assert [f.flow_class for f in flows.values()] == [
        FlowClass.DEFECT,
        FlowClass.DEBT,
        FlowClass.OTHER,
    ]


def test_flow_problems_lists_every_reason_with_its_item() -> None:
    flows = derive_flows(
        [item("A-1", status="Done"), item("A-2", (2, "In Progress"))], FlowSettings(), NOW
    )
    rows = flow_problems(flows.values())
    assert [(p.ref[1], p.reason) for p in rows] == [
        ("A-1", "no status history: started taken as created"),
        ("A-1", "done, but when is unknown: left out of flow time and velocity"),
    ]


def test_an_item_moved_to_another_project_continues_its_history_under_the_new_key() -> None:
    old_ref, new_ref = ("jira", "OLD-7"), ("jira", "NEW-3")
    stale = FlowItem(
        old_ref,
        "Epic",
        T0,
        "In Progress",
        DOING,
        (StatusChange(old_ref, day(2), "Open", "In Progress", DOING),),
        value_streams=("Old",),
    )
    moved = FlowItem(
        new_ref,
        "Epic",
        day(10),  # some trackers reset the creation date on a move
        "Done",
        DONE,
        (
            StatusChange(old_ref, day(2), "Open", "In Progress", DOING),  # carried over
            StatusChange(new_ref, day(12), "In Progress", "Done", DONE),
        ),
        value_streams=("New",),
        former_refs=(old_ref,),
    )
    merged, problems = merge_moved([stale, moved])
    assert problems == []
    assert [m.ref for m in merged] == [new_ref]
    (one,) = merged
    assert (one.created, one.value_streams, len(one.changes)) == (T0, ("New",), 2)
    flow = flow_of(one)
    assert (flow.started, flow.done, flow.problems) == (day(2), day(12), ())


def test_moves_chain_to_the_latest_key_and_cycles_are_left_apart() -> None:
    a, b, c = ("ado", "1"), ("ado", "2"), ("ado", "3")
    items = [
        FlowItem(a, "Epic", T0, "Open", TODO),
        FlowItem(b, "Epic", T0, "Open", TODO, former_refs=(a,)),
        FlowItem(c, "Epic", T0, "Open", TODO, former_refs=(b,)),
    ]
    merged, problems = merge_moved(items)
    assert [m.ref for m in merged] == [c]
    assert merged[0].former_refs == (a, b)
    assert problems == []

    looped = [
        FlowItem(a, "Epic", T0, "Open", TODO, former_refs=(b,)),
        FlowItem(b, "Epic", T0, "Open", TODO, former_refs=(a,)),
    ]
    kept, problems = merge_moved(looped)
    assert [k.ref for k in kept] == [a, b]
    assert [p.ref for p in problems] == [a, b]


def test_group_changes_keeps_each_items_order() -> None:
    a, b = ("jira", "A-1"), ("jira", "B-1")
    stream = [
        StatusChange(a, day(1), "Open", "In Progress"),
        StatusChange(b, day(1), "Open", "Done"),
        StatusChange(a, day(2), "In Progress", "Done"),
    ]
    grouped = group_changes(stream)
    assert [c.to_status for c in grouped[a]] == ["In Progress", "Done"]
    assert [c.to_status for c in grouped[b]] == ["Done"]


def test_settings_refuse_what_the_user_got_wrong() -> None:
    with pytest.raises(ValueError, match="unknown stages: Nowhere"):
        StageMap((Stage("Funnel", TODO),), {"Open": "Nowhere"})
    with pytest.raises(ValueError, match="unique"):
        StageMap((Stage("Funnel", TODO), Stage("Funnel", DOING)))
    with pytest.raises(ValueError, match="both active and waiting: review"):
        FlowSettings(active_statuses=frozenset({"Review"}), wait_statuses=frozenset({"review"}))
    with pytest.raises(ValueError, match="at least one day"):
        FlowSettings(window_days=0)


def test_a_status_stated_with_two_categories_takes_the_lowest_whatever_the_order() -> None:
    # Two workflows of one connection both have a "Review": Done in one, In Progress in the
    # other. A change that says which one it meant is taken at its word; one that does not
    # gets the lowest, whatever the order of the input.
    a, b, c = ("jira", "A-1"), ("jira", "B-1"), ("jira", "C-1")
    items = [
        FlowItem(a, "Epic", T0, "Review", DONE, (StatusChange(a, day(2), "Open", "Review", DONE),)),
        FlowItem(b, "Epic", T0, "Review", DOING, (StatusChange(b, day(3), "Open", "Review"),)),
        FlowItem(
            c,
            "Epic",
            T0,
            "Open",
            TODO,
            (StatusChange(c, day(2), "Open", "Review"), StatusChange(c, day(4), "Review", "Open")),
        ),
    ]
    forward = derive_flows(items, FlowSettings(), NOW)
    backward = derive_flows(items[::-1], FlowSettings(), NOW)
    assert forward == backward
    assert (forward[a].is_done, forward[a].done) == (True, day(2))
    assert (forward[b].is_done, forward[b].started) == (False, day(3))
    assert (forward[c].started, forward[c].wip) == (day(2), True)


def test_a_resolution_date_outside_the_items_life_is_clamped_with_a_reason() -> None:
    early = flow_of(item("A-1", status="Done", created=day(5), resolved=day(2)))
    assert early.done == day(5)
    assert "resolution date before the item started (clock skew): taken as its start" in (
        early.problems
    )
    late = flow_of(item("A-2", status="Done", resolved=NOW + timedelta(days=1)))
    assert late.done == NOW
    assert "resolution date in the future (clock skew): taken as now" in late.problems
