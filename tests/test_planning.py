"""Write planning: minimal field writes, priority bands, the orphan label, and rank writes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from spm_sync.core.domain import ConnectionPlan, Level, PlannedWrite, StatusCategory, WorkItem
from spm_sync.core.domain import WriteField as F
from spm_sync.engines.planning import (
    PriorityTier,
    WritePolicy,
    current_positions,
    current_rank_order,
    plan_connection,
    plan_writes,
    priority_for_scores,
)
from spm_sync.engines.ranking import apply_moves
from spm_sync.engines.wsjf import Score, score_items

NOW = datetime(2026, 3, 1, tzinfo=UTC)
JIRA = "jira"


def item(key: str, **fields: Any) -> WorkItem:
    defaults: dict[str, Any] = {
        "connection": JIRA,
        "id": key,
        "type": "Epic",
        "level": Level.EPIC,
        "title": key,
        "status": "Open",
        "status_category": StatusCategory.TODO,
        "updated": NOW,
        "revision": f"rev-{key}",
        "business_value": 8,
        "time_criticality": 5,
        "risk_reduction": 3,
        "job_size": 4,
    }
    defaults.update(fields)
    return WorkItem(key=key, **defaults)


def plan(items: list[WorkItem], orphans: tuple[str, ...] = (), **settings: Any) -> ConnectionPlan:
    config = WritePolicy(JIRA, **settings)
    return plan_connection(config, items, score_items(items), set(orphans))


def writes_of(result: ConnectionPlan, field: F) -> list[tuple[str, object, object]]:
    return [(w.item_key, w.old, w.new) for w in result.writes if w.field is field]


# --- score and cost of delay -------------------------------------------------------------------


def test_unchanged_values_produce_no_writes() -> None:
    items = [
        item("PAY-1", wsjf_score=4.0, cost_of_delay=16.0, rank="0|b", priority="High"),
        item("PAY-2", job_size=3, wsjf_score=5.333333, cost_of_delay=16, rank="0|a"),
        item("PAY-3", job_size=None, wsjf_score=None, rank="0|c", labels=("other",)),
    ]
    result = plan(items, score=True, cost_of_delay=True, rank=True, orphan_label="no-okr")
    assert result.writes == ()
    assert result.moves == ()
    assert result.is_empty


def test_score_and_cost_of_delay_written_where_they_differ() -> None:
    items = [
        item("PAY-1", wsjf_score=None, cost_of_delay=16.0),
        item("PAY-2", wsjf_score=3.99, cost_of_delay=15.0),
        item("PAY-3", wsjf_score=4.004, cost_of_delay=16.001),  # equal after rounding
    ]
    result = plan(items, score=True, cost_of_delay=True)
    assert writes_of(result, F.WSJF_SCORE) == [("PAY-1", None, 4.0), ("PAY-2", 3.99, 4.0)]
    assert writes_of(result, F.COST_OF_DELAY) == [("PAY-2", 15.0, 16.0)]
    assert all(w.expected_revision == f"rev-{w.item_key}" for w in result.writes)
    assert [w.field for w in result.writes] == [F.WSJF_SCORE, F.WSJF_SCORE, F.COST_OF_DELAY]


def test_writes_are_grouped_by_item_in_natural_key_order() -> None:
    items = [item("PAY-10"), item("PAY-9")]
    result = plan(items, score=True, cost_of_delay=True)
    assert [(w.item_key, w.field) for w in result.writes] == [
        ("PAY-9", F.WSJF_SCORE),
        ("PAY-9", F.COST_OF_DELAY),
        ("PAY-10", F.WSJF_SCORE),
        ("PAY-10", F.COST_OF_DELAY),
    ]


def test_each_items_writes_follow_the_write_field_order() -> None:
    items = [
        item("41", business_value=1, rank=1.0, priority="3", labels=("x",)),
        item("42", business_value=50, rank=2.0, priority="3"),
    ]
    result = plan(
        items,
        orphans=("42",),
        rank_kind="numeric",
        score=True,
        cost_of_delay=True,
        rank=True,
        priority_bands=(PriorityTier(50, "1"),),
        orphan_label="no-okr",
    )
    field_order = list(F)
    rows = [(w.item_key, field_order.index(w.field)) for w in result.writes]
    assert rows == sorted(rows)  # items in key order, each item's fields in WriteField order
    assert {w.field for w in result.writes} == set(F)  # every kind of write is in the plan


def test_unscored_items_keep_a_stale_score_unless_asked_to_clear() -> None:
    items = [item("PAY-1", job_size=0, wsjf_score=7.5), item("PAY-2", job_size=None)]
    assert plan(items, score=True).writes == ()
    cleared = plan(items, score=True, clear_unscored_scores=True)
    assert writes_of(cleared, F.WSJF_SCORE) == [("PAY-1", 7.5, None)]


def test_fields_that_are_off_are_never_written() -> None:
    items = [item("PAY-1", rank=None, priority="Low")]
    assert plan(items, orphans=("PAY-1",)).is_empty


# --- priority ----------------------------------------------------------------------------------

BANDS = (PriorityTier(10, "Highest"), PriorityTier(30, "High"))


def test_priority_bands_cover_cumulative_shares_of_scored_items() -> None:
    items = [item(f"PAY-{n}", business_value=100 - n) for n in range(1, 11)]
    items.append(item("PAY-99", job_size=None))
    wanted = priority_for_scores(score_items(items), BANDS, "Medium")
    assert list(wanted.values()) == ["Highest", "High", "High"] + ["Medium"] * 7
    assert "PAY-99" not in wanted  # unscored items keep their priority


def test_small_backlog_still_gets_a_top_band() -> None:
    items = [item("PAY-1", business_value=9), item("PAY-2")]
    # 10% and 30% of two items both round up to one item: the top band takes it.
    assert priority_for_scores(score_items(items), BANDS, None) == {
        "PAY-1": "Highest",
        "PAY-2": None,
    }
    assert priority_for_scores(score_items(items), (PriorityTier(50, "High"),), "Low") == {
        "PAY-1": "High",
        "PAY-2": "Low",
    }


def test_priority_written_only_where_it_changes() -> None:
    items = [
        item("PAY-1", business_value=50, priority="Highest"),
        item("PAY-2", business_value=40, priority="Low"),
        item("PAY-3", business_value=30, priority=None),
        item("PAY-4", job_size=None, priority="Low"),
    ]
    result = plan(items, priority_bands=(PriorityTier(25, "Highest"), PriorityTier(50, "High")))
    # PAY-3 is below every band and no default is set: left alone.
    assert writes_of(result, F.PRIORITY) == [("PAY-2", "Low", "High")]
    with_default = plan(
        items, priority_bands=(PriorityTier(25, "Highest"),), default_priority="Medium"
    )
    assert writes_of(with_default, F.PRIORITY) == [
        ("PAY-2", "Low", "Medium"),
        ("PAY-3", None, "Medium"),
    ]


def test_priority_band_rejects_bad_percent() -> None:
    with pytest.raises(ValueError, match="top_percent"):
        PriorityTier(0, "High")
    with pytest.raises(ValueError, match="top_percent"):
        PriorityTier(120, "High")


# --- orphan label ------------------------------------------------------------------------------


def test_orphan_label_added_and_removed_with_full_sorted_sets() -> None:
    items = [
        item("PAY-1", labels=("zeta", "alpha")),  # new orphan
        item("PAY-2", labels=("No-OKR", "beta")),  # no longer an orphan: any case is removed
        item("PAY-3", labels=("no-okr",)),  # still an orphan: untouched
        item("PAY-4", level=Level.STORY, status_category=StatusCategory.DONE),
    ]
    result = plan(items, orphans=("PAY-1", "PAY-3"), orphan_label="no-okr")
    assert writes_of(result, F.LABELS) == [
        ("PAY-1", ("alpha", "zeta"), ("alpha", "no-okr", "zeta")),
        ("PAY-2", ("No-OKR", "beta"), ("beta",)),
    ]


# --- rank: lexorank ----------------------------------------------------------------------------


def ranked(values: dict[str, float], ranks: dict[str, Any]) -> list[WorkItem]:
    """Items whose WSJF is `values[key]` (via business value) and current rank `ranks[key]`."""
    return [
        item(
            key,
            business_value=value,
            time_criticality=0,
            risk_reduction=0,
            job_size=1,
            rank=ranks.get(key),
        )
        for key, value in values.items()
    ]


def test_lexorank_moves_only_items_off_the_longest_increasing_subsequence() -> None:
    # Target by WSJF: A B C D E. Current: B C D E A (A was at the bottom).
    items = ranked(
        {"A": 5, "B": 4, "C": 3, "D": 2, "E": 1},
        {"A": "0|e", "B": "0|a", "C": "0|b", "D": "0|c", "E": "0|d"},
    )
    result = plan(items, rank=True)
    assert result.writes == ()
    [move] = result.moves
    assert (move.item_keys, move.after_key, move.before_key) == (("A",), None, "B")
    assert move.writes == (PlannedWrite(JIRA, "A", F.RANK, 5, 1, "rev-A"),)


def test_lexorank_runs_go_after_their_predecessor() -> None:
    # Target A B C D E F G; current A E F B C D G. The only longest increasing run is
    # A B C D G, so E F move, as one block, right after D.
    items = ranked(
        {"A": 7, "B": 6, "C": 5, "D": 4, "E": 3, "F": 2, "G": 1},
        {"A": "1", "E": "2", "F": "3", "B": "4", "C": "5", "D": "6", "G": "7"},
    )
    result = plan(items, rank=True)
    assert [(m.item_keys, m.after_key, m.before_key) for m in result.moves] == [
        (("E", "F"), "D", None)
    ]
    assert [(w.item_key, w.old, w.new) for m in result.moves for w in m.writes] == [
        ("E", 2, 5),
        ("F", 3, 6),
    ]


def test_lexorank_long_runs_are_chunked_by_fifty() -> None:
    count = 120
    values = {f"K-{n}": float(count - n) for n in range(count)}  # target K-0 .. K-119
    ranks = {f"K-{n}": f"{count - n:04d}" for n in range(count)}  # current: reversed
    result = plan(ranked(values, ranks), rank=True)
    assert [len(m.item_keys) for m in result.moves] == [50, 50, 19]
    # Later chunks of one run go after the previous chunk's last key.
    assert result.moves[1].after_key == result.moves[0].item_keys[-1]
    assert result.moves[2].after_key == result.moves[1].item_keys[-1]
    current, _ = current_rank_order(ranked(values, ranks), "lexorank")
    assert apply_moves(current, result.moves) == list(values)


def test_lexorank_unranked_items_always_move() -> None:
    items = ranked({"A": 3, "B": 2, "C": 1}, {"A": "0|a", "C": "0|c"})
    result = plan(items, rank=True)
    assert [(m.item_keys, m.after_key) for m in result.moves] == [(("B",), "A")]


def test_lexorank_nothing_ranked_anchors_on_the_top_item() -> None:
    items = ranked({"A": 3, "B": 2, "C": 1}, {})
    [move] = plan(items, rank=True).moves
    assert (move.item_keys, move.after_key) == (("B", "C"), "A")


def test_rank_scope_is_the_scored_items_of_the_scored_levels() -> None:
    items = [
        item("PAY-1", job_size=None, rank="0|a"),  # unscorable: stays where it is
        item("PAY-2", rank="0|b"),
        item("PAY-3", level=Level.STORY, rank="0|0"),  # not in the rank scope
    ]
    result = plan(items, rank=True)
    assert result.moves == () and result.writes == ()


@pytest.mark.parametrize("rank_kind", ["lexorank", "numeric"])
def test_unscorable_items_are_never_moved_below_the_scored_ones(rank_kind: str) -> None:
    # Current order A U1 B U2 C; the scores want C B A. The unscorable U1 and U2 get no rank
    # write; only scored items move, around them.
    ranks: dict[str, str | float] = (
        {"A": "0|a", "U1": "0|b", "B": "0|c", "U2": "0|d", "C": "0|e"}
        if rank_kind == "lexorank"
        else {"A": 10.0, "U1": 20.0, "B": 30.0, "U2": 40.0, "C": 50.0}
    )
    sizes = {"A": 8, "U1": None, "B": 4, "U2": None, "C": 2}
    items = [item(key, rank=rank, job_size=sizes[key]) for key, rank in ranks.items()]
    result = plan(items, rank=True, rank_kind=rank_kind)
    moved = {w.item_key for w in result.writes} | {
        key for move in result.moves for key in move.item_keys
    }
    assert moved and not moved & {"U1", "U2"}
    if rank_kind == "lexorank":
        after = apply_moves(list(ranks), result.moves)
    else:
        values = dict(ranks) | {w.item_key: w.new for w in result.writes}
        after = sorted(values, key=values.__getitem__)  # type: ignore[arg-type]
    assert [key for key in after if not key.startswith("U")] == ["C", "B", "A"]


# --- rank: numeric -----------------------------------------------------------------------------


def test_numeric_rank_moved_item_gets_the_midpoint() -> None:
    items = ranked({"A": 4, "B": 3, "C": 2, "D": 1}, {"A": 10.0, "B": 30.0, "C": 20.0, "D": 40})
    result = plan(items, rank=True, rank_kind="numeric")
    assert result.moves == ()
    assert writes_of(result, F.RANK) in ([("B", 30.0, 15.0)], [("C", 20.0, 35.0)])


def test_numeric_rank_ends_step_from_the_neighbour() -> None:
    items = ranked({"A": 3, "B": 2, "C": 1}, {"A": 300.0, "B": 100.0, "C": 200.0})
    result = plan(items, rank=True, rank_kind="numeric", numeric_rank_step=50)
    assert writes_of(result, F.RANK) == [("A", 300.0, 50.0)]


def test_numeric_rank_renumbers_the_smallest_window_when_no_gap_is_left() -> None:
    items = ranked(
        {"A": 5, "B": 4, "X": 3, "C": 2, "D": 1},
        {"A": 1.0, "B": 2.0, "C": 2.0000000001, "D": 9.0, "X": 100.0},
    )
    result = plan(items, rank=True, rank_kind="numeric")
    new = {key: value for key, _, value in writes_of(result, F.RANK)}
    # X must go between B and C, which are 1e-10 apart: one of them is renumbered, A and D
    # keep their values.
    assert sorted(new) in (["B", "X"], ["C", "X"])
    values = {"A": 1.0, "B": 2.0, "C": 2.0000000001, "D": 9.0} | new
    assert sorted(values, key=values.__getitem__) == ["A", "B", "X", "C", "D"]


def test_numeric_rank_ties_are_broken_by_renumbering() -> None:
    items = ranked({"A": 3, "B": 2, "C": 1}, {"A": 5.0, "B": 5.0, "C": 5.0})
    result = plan(items, rank=True, rank_kind="numeric")
    values = {"A": 5.0, **{key: value for key, _, value in writes_of(result, F.RANK)}}
    assert sorted(values, key=values.__getitem__) == ["A", "B", "C"]
    assert len(result.writes) == 2


def test_numeric_rank_unranked_items_get_values() -> None:
    items = ranked({"A": 3, "B": 2, "C": 1}, {"A": 10.0, "B": None, "C": "not-a-number"})
    result = plan(items, rank=True, rank_kind="numeric")
    assert writes_of(result, F.RANK) == [("B", None, 1010.0), ("C", "not-a-number", 2010.0)]


# --- plan_writes -------------------------------------------------------------------------------


def test_plan_writes_splits_by_connection_and_passes_orphans() -> None:
    items = [
        item("PAY-1", wsjf_score=None),
        item("41", connection="ado", wsjf_score=None, labels=("x",)),
    ]
    plans = plan_writes(
        items,
        score_items(items),
        [WritePolicy(JIRA, score=True), WritePolicy("ado", orphan_label="no-okr")],
        orphans={("ado", "41"), (JIRA, "PAY-1")},
    )
    assert writes_of(plans[JIRA], F.WSJF_SCORE) == [("PAY-1", None, 4.0)]
    assert writes_of(plans[JIRA], F.LABELS) == []
    assert writes_of(plans["ado"], F.LABELS) == [("41", ("x",), ("no-okr", "x"))]
    assert writes_of(plans["ado"], F.WSJF_SCORE) == []


def test_plan_for_a_connection_without_items_is_empty() -> None:
    plans = plan_writes([], [], [WritePolicy("empty", rank=True, score=True)])
    assert plans == {"empty": ConnectionPlan("empty")}


def test_score_without_pulled_item_is_a_programming_error() -> None:
    ghost = Score(JIRA, "PAY-404", Level.EPIC, 1, 1, 1, 1, 3, 3.0, rank=1)
    with pytest.raises(ValueError, match="PAY-404"):
        plan_connection(WritePolicy(JIRA, rank=True), [], [ghost])


def test_current_positions_are_the_old_ranks_within_the_scope() -> None:
    items = [
        item("PAY-1", rank="0|c"),
        item("PAY-2", rank="0|a"),
        item("PAY-3", rank=None),
        item("PAY-4", level=Level.STORY, rank="0|0"),  # outside the rank scope
        item("PAY-5", job_size=None, rank="0|1"),  # unscored: not ranked, so not counted
    ]
    assert current_positions(items, score_items(items), "lexorank") == {
        "PAY-2": 1,
        "PAY-1": 2,
        "PAY-3": 3,
    }
    numeric = [item("41", rank=2.5), item("42", rank=-1.0)]
    assert current_positions(numeric, score_items(numeric), "numeric") == {"42": 1, "41": 2}
