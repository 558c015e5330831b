"""WSJF engine: arithmetic, every unscorable case, snapping, tie-breaks and ranking groups."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest

from spm_sync.core.domain import Level, StatusCategory, WorkItem
from spm_sync.engines.ranking import natural_key
from spm_sync.engines.wsjf import Score, WsjfRules, portfolio_order, score_items, snap

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def item(
    key: str,
    bv: float | None = 8,
    tc: float | None = 5,
    rr: float | None = 3,
    size: float | None = 4,
    **fields: Any,
) -> WorkItem:
    defaults: dict[str, Any] = {
        "connection": "jira",
        "id": key,
        "type": "Epic",
        "level": Level.EPIC,
        "title": key,
        "status": "Open",
        "status_category": StatusCategory.TODO,
        "updated": NOW,
        "revision": "1",
    }
    defaults.update(fields)
    return WorkItem(
        key=key,
        business_value=bv,
        time_criticality=tc,
        risk_reduction=rr,
        job_size=size,
        **defaults,
    )


def by_key(scores: list[Score]) -> dict[str, Score]:
    return {score.item_key: score for score in scores}


def order(scores: list[Score]) -> list[str]:
    return [score.item_key for score in scores]


def test_cost_of_delay_and_wsjf() -> None:
    [score] = score_items([item("PAY-1", 8, 5, 3, 4)])
    assert score == Score(
        connection="jira",
        item_key="PAY-1",
        level=Level.EPIC,
        business_value=8,
        time_criticality=5,
        risk_reduction=3,
        job_size=4,
        cost_of_delay=16,
        wsjf=4.0,
        rank=1,
        portfolio_rank=1,
        reason=None,
        exact_wsjf=4.0,
    )
    assert score.scored


@pytest.mark.parametrize(("decimals", "expected"), [(2, 3.33), (0, 3.0), (4, 3.3333)])
def test_score_is_rounded_to_the_configured_decimals(decimals: int, expected: float) -> None:
    [score] = score_items([item("PAY-1", 5, 3, 2, 3)], WsjfRules(decimals=decimals))
    assert score.wsjf == expected


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"size": 0}, "job size is 0"),
        ({"size": None}, "missing: job size"),
        ({"tc": None, "rr": None}, "missing: time criticality, risk reduction"),
        (
            {"bv": None, "tc": None, "rr": None, "size": None},
            "missing: business value, time criticality, risk reduction, job size",
        ),
        ({"size": -2}, "job size is negative (-2)"),
        ({"bv": -1.5}, "business value is negative (-1.5)"),
        ({"rr": math.nan}, "risk reduction is not a finite number (nan)"),
        ({"size": math.inf}, "job size is not a finite number (inf)"),
        (
            {"bv": None, "field_problems": {"business_value": "'high' is not a number"}},
            "business value: 'high' is not a number",
        ),
        (
            {
                "bv": None,
                "tc": None,
                "size": 0,
                "field_problems": {"business_value": "'high' is not a number"},
            },
            "business value: 'high' is not a number; job size is 0; missing: time criticality",
        ),
    ],
)
def test_unscorable_items_name_their_inputs(fields: dict[str, Any], reason: str) -> None:
    [score] = score_items([item("PAY-1", **fields)])
    assert not score.scored
    assert score.reason == reason
    assert score.wsjf is None and score.cost_of_delay is None
    assert score.rank == 1


def test_unscored_inputs_keep_what_is_usable() -> None:
    [score] = score_items([item("PAY-1", bv=math.nan, tc=5, rr=None, size=0)])
    assert (score.business_value, score.time_criticality, score.risk_reduction) == (None, 5, None)
    assert score.job_size == 0


def test_field_problem_wins_over_a_value() -> None:
    problem = {"job_size": "'XL' is not a number"}
    [score] = score_items([item("PAY-1", field_problems=problem)])
    assert score.reason == "job size: 'XL' is not a number"


def test_zero_value_inputs_are_scorable() -> None:
    [score] = score_items([item("PAY-1", 0, 0, 0, 5)])
    assert score.wsjf == 0.0
    assert score.scored


def test_unscored_rank_after_all_scored_by_natural_key() -> None:
    items = [
        item("PAY-10", size=None),
        item("PAY-3", 1, 1, 1, 100),  # the lowest score still ranks above every unscored item
        item("PAY-9", size=0),
        item("PAY-1", 20, 20, 20, 1),
    ]
    scores = score_items(items)
    assert order(scores) == ["PAY-1", "PAY-3", "PAY-9", "PAY-10"]
    assert [score.rank for score in scores] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("value", "snapped"),
    [
        (1, 1),
        (0.4, 1),
        (2.4, 2),
        (2.5, 3),  # halfway: up
        (4, 5),  # halfway between 3 and 5: up
        (6, 5),
        (7, 8),
        (30, 40),  # halfway between 20 and 40: up
        (29.9, 20),
        (70, 100),
        (150, 100),
        (0, 0),
    ],
)
def test_snap_to_modified_fibonacci(value: float, snapped: float) -> None:
    assert snap(value) == snapped


def test_snapping_applies_to_the_inputs_before_scoring() -> None:
    [score] = score_items([item("PAY-1", 4, 6, 30, 7)], WsjfRules(snap_to_scale=True))
    assert (score.business_value, score.time_criticality, score.risk_reduction) == (5, 5, 40)
    assert score.job_size == 8
    assert score.cost_of_delay == 50
    assert score.wsjf == 6.25


def test_tie_on_wsjf_broken_by_higher_cost_of_delay() -> None:
    scores = score_items([item("PAY-1", 4, 3, 3, 5), item("PAY-2", 8, 6, 6, 10)])
    assert [score.wsjf for score in scores] == [2.0, 2.0]
    assert order(scores) == ["PAY-2", "PAY-1"]


def test_tie_on_wsjf_and_cost_of_delay_broken_by_smaller_job_size() -> None:
    # 10/5.01 and 10/5 are one tie within a tolerance of 0.01; the smaller job goes first.
    items = [item("PAY-1", 4, 3, 3, 5.01), item("PAY-2", 4, 3, 3, 5)]
    scores = score_items(items, WsjfRules(tie_tolerance=0.01))
    assert [score.cost_of_delay for score in scores] == [10, 10]
    assert order(scores) == ["PAY-2", "PAY-1"]


def test_order_is_decided_on_the_exact_score_not_the_rounded_one() -> None:
    # 21/8 = 2.625 and 34/13 = 2.615 both show as 2.62; ordered on the rounded score the
    # higher Cost of Delay (34) went first, below a job with a higher score.
    scores = score_items([item("PAY-1", 13, 5, 3, 8), item("PAY-2", 20, 8, 6, 13)])
    assert [(s.item_key, s.wsjf, s.rank) for s in scores] == [
        ("PAY-1", 2.62, 1),
        ("PAY-2", 2.62, 2),
    ]
    assert [s.exact_wsjf for s in scores] == [21 / 8, 34 / 13]


@pytest.mark.parametrize("decimals", [0, 1, 2, 6])
def test_rounding_never_changes_the_order(decimals: int) -> None:
    items = [item(f"PAY-{n}", n % 7 + 1, n % 5, n % 3, n % 11 + 1) for n in range(1, 60)]
    exact = order(score_items(items, WsjfRules(decimals=6)))
    assert order(score_items(items, WsjfRules(decimals=decimals))) == exact


def test_a_tie_tolerance_treats_near_scores_as_equal_for_the_tie_breaks() -> None:
    items = [item("PAY-1", 13, 5, 3, 8), item("PAY-2", 20, 8, 6, 13)]  # 2.625, 2.615
    loose = score_items(items, WsjfRules(tie_tolerance=0.02))
    assert order(loose) == ["PAY-2", "PAY-1"]  # a tie: the higher Cost of Delay first
    assert order(score_items(items, WsjfRules(tie_tolerance=0.005))) == ["PAY-1", "PAY-2"]


def test_a_tie_group_spans_the_tolerance_from_its_highest_score_only() -> None:
    # 3.0, 2.95, 2.9, 2.85 in steps of 0.05: with a tolerance of 0.1 the first three are one
    # group (2.9 is 0.1 below 3.0) and 2.85 starts the next; chained, all four would tie.
    items = [
        item("PAY-1", 30, 0, 0, 10),
        item("PAY-2", 59, 0, 0, 20),
        item("PAY-3", 87, 0, 0, 30),
        item("PAY-4", 114, 0, 0, 40),
    ]
    scores = score_items(items, WsjfRules(tie_tolerance=0.1 + 1e-9))
    assert order(scores) == ["PAY-3", "PAY-2", "PAY-1", "PAY-4"]


def test_full_tie_broken_by_natural_key() -> None:
    scores = score_items([item("PAY-10"), item("PAY-9"), item("PAY-100"), item("ABC-99")])
    assert order(scores) == ["ABC-99", "PAY-9", "PAY-10", "PAY-100"]


def test_full_tie_across_connections_broken_by_connection() -> None:
    items = [item("7", connection="zeta"), item("7", connection="alpha")]
    scores = score_items(items)
    assert [(s.connection, s.portfolio_rank) for s in portfolio_order(scores)] == [
        ("alpha", 1),
        ("zeta", 2),
    ]


def test_ranks_per_connection_and_across_the_portfolio() -> None:
    items = [
        item("PAY-1", 1, 1, 1, 1, connection="jira"),  # 3.0
        item("PAY-2", 8, 8, 8, 2, connection="jira"),  # 12.0
        item("41", 5, 5, 5, 3, connection="ado"),  # 5.0
        item("42", size=None, connection="ado"),
        item("PAY-3", size=None, connection="jira"),
    ]
    scores = score_items(items)
    assert [(s.connection, s.item_key, s.rank) for s in scores] == [
        ("ado", "41", 1),
        ("ado", "42", 2),
        ("jira", "PAY-2", 1),
        ("jira", "PAY-1", 2),
        ("jira", "PAY-3", 3),
    ]
    assert [s.item_key for s in portfolio_order(scores)] == ["PAY-2", "41", "PAY-1", "42", "PAY-3"]


def test_portfolio_rank_can_be_switched_off() -> None:
    [score] = score_items([item("PAY-1")], WsjfRules(portfolio_rank=False))
    assert score.portfolio_rank is None
    with pytest.raises(ValueError, match="without portfolio_rank"):
        portfolio_order([score])


def test_only_configured_levels_and_open_statuses_are_scored() -> None:
    items = [
        item("PAY-1"),
        item("PAY-2", level=Level.FEATURE),
        item("PAY-3", level=Level.STORY),
        item("PAY-4", level=None),
        item("PAY-5", status_category=StatusCategory.DONE),
        item("PAY-6", status_category=StatusCategory.IN_PROGRESS),
    ]
    assert sorted(by_key(score_items(items))) == ["PAY-1", "PAY-6"]  # epics by default
    with_features = WsjfRules(levels=(Level.EPIC, Level.FEATURE))
    assert sorted(by_key(score_items(items, with_features))) == ["PAY-1", "PAY-2", "PAY-6"]
    stories = WsjfRules(levels=(Level.STORY,), status_categories=tuple(StatusCategory))
    assert order(score_items(items, stories)) == ["PAY-3"]


def test_settings_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="decimals"):
        WsjfRules(decimals=9)
    with pytest.raises(ValueError, match="at least one level"):
        WsjfRules(levels=())
    with pytest.raises(ValueError, match="tie tolerance"):
        WsjfRules(tie_tolerance=-0.1)


def test_natural_key_orders_numbers_by_value() -> None:
    keys = ["PAY-10", "pay-9", "PAY-9", "10", "9", "A-1-2", "A-1-10", "PAY-09"]
    assert sorted(keys, key=natural_key) == [
        "9",
        "10",
        "A-1-2",
        "A-1-10",
        "PAY-09",
        "PAY-9",
        "pay-9",
        "PAY-10",
    ]
