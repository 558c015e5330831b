"""Capacity against the WSJF-ranked demand: cut lines per interval, the best items below a cut,
in-progress work below it, unsized items, zero capacity and unknown teams."""

from __future__ import annotations

from spm_sync.engines.portfolio.capacity import DemandItem, IntervalCapacity, plan_capacity


def item(key: str, wsjf: float | None, size: float | None, doing: bool = False) -> DemandItem:
    return DemandItem(("jira", key), wsjf, size, doing)


def keys(items: tuple[DemandItem, ...]) -> list[str]:
    return [i.ref[1] for i in items]


BACKLOG = [
    item("A", 9.0, 5),
    item("B", 7.0, 3),
    item("C", 6.0, 8),  # does not fit in PI-1 (5 + 3 + 8 > 10): the line falls before it
    item("D", 5.0, 1),  # would fit, but does not jump the line
    item("E", 2.0, 3, doing=True),
    item("F", None, 2, doing=True),
]


def test_the_cut_line_falls_where_capacity_runs_out_in_rank_order() -> None:
    plan = plan_capacity({"Payments": BACKLOG}, {"Payments": [IntervalCapacity("PI-1", 10)]})
    [team] = plan.teams
    [cut] = team.cuts
    assert (cut.cut_index, keys(cut.planned), cut.planned_points) == (2, ["A", "B"], 8)
    assert (cut.remaining_points, cut.below_count, cut.below_points) == (2, 4, 14)
    assert keys(cut.high_wsjf_below) == ["C", "D", "E"]  # scored only, best first
    # Worked on although they do not make the cut: least WSJF first, unscored counting least.
    assert keys(cut.in_progress_below) == ["F", "E"]
    assert keys(team.above(cut)) == ["A", "B"]
    assert keys(team.below(cut)) == ["C", "D", "E", "F"]
    assert not plan.problems


def test_intervals_take_the_ranked_list_in_turn() -> None:
    plan = plan_capacity(
        {"payments": BACKLOG},  # team names match ignoring case
        {"Payments": [IntervalCapacity("PI-1", 10), IntervalCapacity("PI-2", 12)]},
    )
    first, second = plan.teams[0].cuts
    assert keys(first.planned) == ["A", "B"]
    assert (keys(second.planned), second.cut_index, second.remaining_points) == (
        ["C", "D", "E"],
        5,
        0,
    )
    assert keys(second.in_progress_below) == ["F"]
    assert keys(second.high_wsjf_below) == []


def test_the_best_items_below_are_limited_and_ties_keep_rank_order() -> None:
    backlog = [item("A", 9.0, 10), item("B", 3.0, 1), item("C", 8.0, 1), item("D", 8.0, 1)]
    plan = plan_capacity({"T": backlog}, {"T": [IntervalCapacity("PI-1", 10)]}, high_wsjf_below=2)
    assert keys(plan.teams[0].cuts[0].high_wsjf_below) == ["C", "D"]


def test_zero_capacity_puts_everything_below_the_line_with_a_problem() -> None:
    plan = plan_capacity({"T": BACKLOG}, {"T": [IntervalCapacity("PI-1", 0)]})
    [cut] = plan.teams[0].cuts
    assert (cut.cut_index, cut.planned, cut.below_count) == (0, (), 6)
    assert [(p.team, p.interval, p.reason) for p in plan.problems] == [
        ("T", "PI-1", "team 'T' has zero capacity in PI-1: nothing fits")
    ]


def test_negative_capacity_counts_as_zero_with_a_problem() -> None:
    plan = plan_capacity({"T": BACKLOG}, {"T": [IntervalCapacity("PI-1", -4)]})
    [cut] = plan.teams[0].cuts
    assert cut.capacity == 0 and cut.cut_index == 0
    assert plan.problems[0].reason == "capacity -4 is not a number of points ≥ 0: taken as 0"


def test_a_team_without_capacity_is_a_problem_and_is_not_planned() -> None:
    plan = plan_capacity({"Ghosts": BACKLOG}, {"T": [IntervalCapacity("PI-1", 5)]})
    assert [t.team for t in plan.teams] == ["T"]
    assert plan.teams[0].cuts[0].planned == ()
    assert [(p.team, p.interval, p.reason) for p in plan.problems] == [
        (
            "Ghosts",
            None,
            "no capacity is configured for team 'Ghosts': its 6 ranked items are not planned",
        )
    ]


def test_items_without_a_usable_job_size_are_listed_unsized_and_take_no_capacity() -> None:
    backlog = [item("A", 9.0, None), item("B", 8.0, 0), item("C", 7.0, 4), item("D", 6.0, -1)]
    plan = plan_capacity({"T": backlog}, {"T": [IntervalCapacity("PI-1", 4)]})
    team = plan.teams[0]
    assert keys(team.ranked) == ["C"]
    assert keys(team.cuts[0].planned) == ["C"]
    assert [(u.item.ref[1], u.reason) for u in team.unsized] == [
        ("A", "no job size: not counted against capacity"),
        ("B", "job size 0 is not a positive number"),
        ("D", "job size -1 is not a positive number"),
    ]


def test_an_item_bigger_than_the_capacity_holds_the_line() -> None:
    plan = plan_capacity(
        {"T": [item("A", 9.0, 20), item("B", 8.0, 1)]}, {"T": [IntervalCapacity("PI-1", 10)]}
    )
    cut = plan.teams[0].cuts[0]
    assert cut.planned == () and cut.remaining_points == 10 and cut.below_count == 2


def test_capacity_exactly_used_up_fits() -> None:
    plan = plan_capacity(
        {"T": [item("A", 9.0, 0.1), item("B", 8.0, 0.2)]}, {"T": [IntervalCapacity("PI-1", 0.3)]}
    )
    assert plan.teams[0].cuts[0].cut_index == 2
