"""A Key Result's current value from its query or left manual: failed and empty queries, items
without a value, and progress by the report's baseline-to-target rule."""

from __future__ import annotations

import pytest

from spm_sync.core.results_alignment import KeyResultAlignment
from spm_sync.engines.portfolio.measures import (
    MANUAL,
    MatchedItem,
    Measure,
    MeasureKind,
    QueryFailed,
    QueryResult,
    measure_key_result,
    progress_pct,
)

COUNT = Measure(MeasureKind.COUNT)
SHARE = Measure(MeasureKind.SHARE_DONE)
POINTS = Measure(MeasureKind.SUM, "story_points")


def matched(*done: bool, values: tuple[float | None, ...] = ()) -> QueryResult:
    values = values or (None,) * len(done)
    return QueryResult(
        tuple(
            MatchedItem(("jira", f"P-{n}"), d, v)
            for n, (d, v) in enumerate(zip(done, values, strict=True))
        )
    )


def test_count_sum_and_share_done_of_the_matched_items() -> None:
    result = matched(True, False, True, False, values=(3, 5, None, 2))
    count = measure_key_result("K1", COUNT, result, target=10, baseline=0)
    assert (count.current, count.progress_pct, count.problems, count.notes) == (4, 40.0, (), ())
    total = measure_key_result("K1", POINTS, result, target=20, baseline=0)
    assert total.current == 10
    assert total.notes == ("1 of 4 matched items have no usable story_points: left out of the sum",)
    share = measure_key_result("K1", SHARE, result, target=100, baseline=0)
    assert (share.current, share.progress_pct) == (50.0, 50.0)


def test_a_failed_query_leaves_the_value_unknown_with_its_reason() -> None:
    failed = measure_key_result(
        "K1",
        COUNT,
        QueryFailed("JQL: field 'Team' does not exist"),
        target=5,
        baseline=0,
        manual_current=3,
    )
    assert failed.current is None and not failed.measured
    assert failed.problems == ("the count query failed: JQL: field 'Team' does not exist",)


def test_a_query_not_run_is_a_problem() -> None:
    assert measure_key_result("K1", POINTS, None, target=5).problems == (
        "the sum(story_points) query was not run",
    )


@pytest.mark.parametrize("measure", [COUNT, POINTS])
def test_an_empty_count_or_sum_is_zero_with_a_note(measure: Measure) -> None:
    empty = measure_key_result("K1", measure, QueryResult(), target=10, baseline=0)
    assert (empty.current, empty.progress_pct, empty.problems) == (0.0, 0.0, ())
    assert empty.notes == (f"the {measure.label} query matched no items: taken as 0",)


def test_an_empty_share_done_has_no_value_and_says_why() -> None:
    empty = measure_key_result("K1", SHARE, QueryResult(), target=100, baseline=0)
    assert empty.current is None
    assert empty.problems == (
        "the share_done query matched no items: the share of nothing is unknown",
    )


def test_a_manual_key_result_uses_the_stated_value_or_says_it_has_none() -> None:
    ok = measure_key_result("K1", MANUAL, None, target=2.0, baseline=5.0, manual_current=3.5)
    assert (ok.current, ok.progress_pct, ok.problems) == (3.5, 50.0, ())  # lower is better
    missing = measure_key_result("K1", MANUAL, QueryResult(), target=2.0, baseline=5.0)
    assert missing.current is None
    assert missing.problems == ("no current value: state it, or give the key result a query",)


def test_a_value_without_baseline_or_target_has_no_progress_and_says_why() -> None:
    no_baseline = measure_key_result("K1", COUNT, matched(True), target=4)
    assert no_baseline.current == 1 and no_baseline.progress_pct is None
    assert "no baseline" in no_baseline.problems[0]
    no_target = measure_key_result("K1", COUNT, matched(True), target=None)
    assert "no target" in no_target.problems[0]


@pytest.mark.parametrize(
    ("baseline", "target", "current"),
    [(0, 10, 4), (5, 2, 3.5), (10, 20, 25), (10, 20, 5), (None, 20, 5), (3, 3, 3), (1, 2, None)],
)
def test_progress_is_the_report_rule(
    baseline: float | None, target: float | None, current: float | None
) -> None:
    row = KeyResultAlignment(id="K", title="K", target=target, current=current, baseline=baseline)
    assert progress_pct(baseline, target, current) == row.progress_pct


def test_a_measure_names_its_field_only_when_it_sums() -> None:
    with pytest.raises(ValueError, match="needs the field"):
        Measure(MeasureKind.SUM)
    with pytest.raises(ValueError, match="takes no field"):
        Measure(MeasureKind.COUNT, "points")
