"""The Portfolio Kanban: cards in their stages per value stream, limits per stage and per
stream, the stop-starting order, and items that cannot be placed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from spm_sync.core.domain import StatusCategory
from spm_sync.core.history import FlowItem, StatusChange
from spm_sync.engines.flow.facts import ItemFlow, derive_flows
from spm_sync.engines.flow.kanban import portfolio_kanban
from spm_sync.engines.flow.settings import FlowSettings, Stage, StageMap, WipLimits

TODO, DOING, DONE = StatusCategory.TODO, StatusCategory.IN_PROGRESS, StatusCategory.DONE
T0 = datetime(2026, 3, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=60)

STAGES = StageMap(
    stages=(
        Stage("Funnel", TODO),
        Stage("Analyzing", DOING),
        Stage("Implementing", DOING),
        Stage("Done", DONE),
    ),
    statuses={"New": "Funnel", "Analysis": "Analyzing", "Build": "Implementing", "Closed": "Done"},
)
CATEGORY = {"New": TODO, "Analysis": DOING, "Build": DOING, "Closed": DONE, "Parked": TODO}


def epic(key: str, status: str, entered_day: float | None, *streams: str) -> FlowItem:
    """An epic created at T0 in "New" that moved to `status` on `entered_day` (None: no history)."""
    ref = ("jira", key)
    changes = ()
    if entered_day is not None and status != "New":
        at = T0 + timedelta(days=entered_day)
        changes = (StatusChange(ref, at, "New", status, CATEGORY[status]),)
    return FlowItem(ref, "Epic", T0, status, CATEGORY[status], changes, streams)


def flows(*items: FlowItem) -> list[ItemFlow]:
    return list(derive_flows(items, FlowSettings(stage_map=STAGES), NOW).values())


def keys(refs: tuple[tuple[str, str], ...]) -> list[str]:
    return [key for _, key in refs]


def test_cards_sit_in_their_stage_columns_in_order_of_entry_per_value_stream() -> None:
    board = portfolio_kanban(
        flows(
            epic("P-1", "Build", 9, "Payments"),
            epic("P-2", "Build", 3, "Payments"),
            epic("P-3", "Analysis", 5, "Payments"),
            epic("M-1", "New", None, "Mobile"),
        ),
        STAGES,
        WipLimits(),
    )
    assert [b.value_stream for b in board.boards] == ["Mobile", "Payments"]
    payments = board.boards[1]
    assert [c.stage for c in payments.columns] == ["Funnel", "Analyzing", "Implementing", "Done"]
    assert [[c.ref[1] for c in col.cards] for col in payments.columns] == [
        [],
        ["P-3"],
        ["P-2", "P-1"],
        [],
    ]
    assert board.stage_counts == {"Funnel": 1, "Analyzing": 1, "Implementing": 2, "Done": 0}
    assert board.over_limit == () and board.stop_starting == () and board.unplaced == ()


def test_a_stage_over_its_portfolio_limit_names_the_latest_entries_to_stop_starting() -> None:
    items = [
        epic("A-1", "Build", 1, "Payments"),
        epic("A-2", "Build", 20, "Mobile"),
        epic("A-3", "Build", 5, "Payments"),
        epic("A-4", "Build", 30, "Payments"),
        epic("A-5", "Analysis", 40, "Payments"),
    ]
    board = portfolio_kanban(flows(*items), STAGES, WipLimits(per_stage={"Implementing": 2}))
    (over,) = board.over_limit
    assert (over.value_stream, over.stage, over.limit, over.count) == (None, "Implementing", 2, 4)
    assert keys(over.beyond) == ["A-4", "A-2"]  # entered last, most recent first
    assert keys(board.stop_starting) == ["A-4", "A-2"]
    assert keys(board.over_limit_items) == ["A-2", "A-4"]
    implementing = board.boards[1].columns[2]  # Payments
    assert [(c.ref[1], c.beyond_limit) for c in implementing.cards] == [
        ("A-1", False),
        ("A-3", False),
        ("A-4", True),
    ]
    assert implementing.limit is None and implementing.over_by == 0


def test_limits_per_value_stream_count_that_streams_board() -> None:
    items = [
        epic("A-1", "Analysis", 1, "Payments"),
        epic("A-2", "Analysis", 2, "Payments", "Mobile"),
        epic("A-3", "Analysis", 3, "Payments"),
        epic("A-4", "Analysis", 4, "Mobile"),
    ]
    limits = WipLimits(per_stream={("Payments", "Analyzing"): 1, ("Mobile", "Analyzing"): 2})
    board = portfolio_kanban(flows(*items), STAGES, limits)
    (over,) = board.over_limit
    assert (over.value_stream, over.stage, over.count, keys(over.beyond)) == (
        "Payments",
        "Analyzing",
        3,
        ["A-3", "A-2"],
    )
    payments = {b.value_stream: b for b in board.boards}["Payments"]
    assert [c.stage for c in payments.over_limit] == ["Analyzing"]
    assert payments.over_limit[0].over_by == 2
    mobile = {b.value_stream: b for b in board.boards}["Mobile"]
    assert mobile.over_limit == ()
    # A-2 is beyond the Payments limit, so its Mobile card is flagged too.
    assert [(c.ref[1], c.beyond_limit) for c in mobile.columns[1].cards] == [
        ("A-2", True),
        ("A-4", False),
    ]
    assert keys(board.stop_starting) == ["A-3", "A-2"]


def test_stop_starting_merges_every_limit_once_most_recent_first() -> None:
    items = [
        epic("A-1", "Analysis", 10, "Payments"),
        epic("A-2", "Analysis", 11, "Payments"),
        epic("A-3", "Build", 12, "Payments"),
        epic("A-4", "Build", 13, "Payments"),
        epic("A-5", "Build", 14, "Payments"),
    ]
    limits = WipLimits(
        per_stage={"Implementing": 2, "Analyzing": 1},
        per_stream={("Payments", "Implementing"): 1},
    )
    board = portfolio_kanban(flows(*items), STAGES, limits)
    assert [(o.value_stream, o.stage) for o in board.over_limit] == [
        (None, "Analyzing"),
        (None, "Implementing"),
        ("Payments", "Implementing"),
    ]
    assert keys(board.stop_starting) == ["A-5", "A-4", "A-2"]


def test_cards_whose_entry_is_unknown_count_as_earliest_and_are_named_last() -> None:
    items = [epic("A-1", "Build", None), epic("A-2", "Build", 5), epic("A-3", "Build", None)]
    board = portfolio_kanban(flows(*items), STAGES, WipLimits(per_stage={"Implementing": 0}))
    assert keys(board.stop_starting) == ["A-2", "A-3", "A-1"]
    (none_board,) = board.boards
    assert none_board.value_stream is None
    assert [c.ref[1] for c in none_board.columns[2].cards] == ["A-1", "A-3", "A-2"]


def test_unmapped_statuses_are_unplaced_with_the_reason() -> None:
    board = portfolio_kanban(
        flows(epic("A-1", "Parked", 3), epic("A-2", "Build", 2)), STAGES, WipLimits()
    )
    assert [(u.ref[1], u.reason) for u in board.unplaced] == [
        ("A-1", "status 'Parked' is mapped to no stage")
    ]
    assert board.stage_counts["Implementing"] == 1


def test_done_column_shows_only_recent_finishes_when_asked() -> None:
    items = [epic("A-1", "Closed", 10), epic("A-2", "Closed", 55), epic("A-3", "Closed", None)]
    everything = portfolio_kanban(flows(*items), STAGES, WipLimits())
    assert everything.stage_counts["Done"] == 3
    recent = portfolio_kanban(
        flows(*items), STAGES, WipLimits(), done_since=NOW - timedelta(days=14)
    )
    assert [c.ref[1] for c in recent.boards[0].columns[3].cards] == ["A-2"]


def test_configuration_mistakes_are_refused_with_a_message() -> None:
    with pytest.raises(ValueError, match="stages configured"):
        portfolio_kanban([], StageMap(), WipLimits())
    with pytest.raises(ValueError, match="unknown stages: Review"):
        portfolio_kanban([], STAGES, WipLimits(per_stream={("Payments", "Review"): 2}))
    with pytest.raises(ValueError, match="must not be negative"):
        WipLimits(per_stage={"Funnel": -1})


def test_the_first_items_over_a_limit_are_the_first_of_them_all_sorted() -> None:
    # Many items beyond two limits, some beyond both, entered in no particular order.
    items = [
        epic(f"E-{(n * 37) % 101:03d}", "Build", float(n % 17), *(["PAY"] if n % 3 else []))
        for n in range(101)
    ]
    board = portfolio_kanban(
        flows(*items),
        STAGES,
        WipLimits(per_stage={"Implementing": 20}, per_stream={("PAY", "Implementing"): 10}),
    )
    every = board.over_limit_items
    assert len(every) > 60
    for count in (0, 1, 7, 50, len(every), len(every) + 5):
        assert board.first_over_limit_items(count) == (every[:count], len(every))
