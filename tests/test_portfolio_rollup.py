"""Objective progress and confidence rolled up the OKR tree: weights by default equal, scaled
when they do not add up to 1, bad weights left out; aligned work counted once per objective."""

from __future__ import annotations

import pytest

from spm_sync.engines.portfolio.measures import MANUAL, KrMeasurement, Measure, MeasureKind
from spm_sync.engines.portfolio.okr_tree import FILE_SOURCE, OkrKind, OkrRecord, OkrTree, merge_okrs
from spm_sync.engines.portfolio.rollup import AlignedWork, WorkTotals, roll_up

COUNT = Measure(MeasureKind.COUNT)


def tree(*key_results: tuple[str, str, float | None], nested: bool = False) -> OkrTree:
    """Objectives O1 (and O2 under O1 when `nested`), Key Results (id, objective, weight)."""
    records = [OkrRecord("O1", "Grow", OkrKind.OBJECTIVE, FILE_SOURCE)]
    if nested:
        records.append(OkrRecord("O2", "Sub", OkrKind.OBJECTIVE, FILE_SOURCE, parent_id="O1"))
    records += [
        OkrRecord(kr, kr, OkrKind.KEY_RESULT, FILE_SOURCE, parent_id=o, weight=w)
        for kr, o, w in key_results
    ]
    return merge_okrs(records)


def clean(kr_id: str, progress: float | None) -> KrMeasurement:
    return KrMeasurement(kr_id, MANUAL, 1.0 if progress is not None else None, progress)


def test_equal_weights_by_default_and_progress_capped_per_key_result() -> None:
    result = roll_up(
        tree(("K1", "O1", None), ("K2", "O1", None)),
        {"K1": clean("K1", 40.0), "K2": clean("K2", 150.0)},
        {},
    )
    o1 = result.objectives["O1"]
    # 150% counts as 100%: one Key Result past its target does not hide another short of it.
    assert o1.progress_pct == 70.0
    assert o1.confidence == 1.0
    assert [(p.id, p.weight, p.progress_pct) for p in o1.parts] == [
        ("K1", 0.5, 40.0),
        ("K2", 0.5, 150.0),
    ]
    assert not o1.problems and not o1.notes


def test_weights_that_do_not_add_up_to_one_are_scaled_with_a_note() -> None:
    result = roll_up(
        tree(("K1", "O1", 30), ("K2", "O1", 10)),
        {"K1": clean("K1", 100.0), "K2": clean("K2", 0.0)},
        {},
    )
    o1 = result.objectives["O1"]
    assert o1.progress_pct == 75.0
    assert [p.weight for p in o1.parts] == [0.75, 0.25]
    assert o1.notes == ("weights add up to 40, not 1: scaled to add up to 1",)


@pytest.mark.parametrize("bad", [0.0, -0.5, float("nan")])
def test_a_weight_that_is_not_positive_is_a_problem_and_the_part_is_left_out(bad: float) -> None:
    result = roll_up(
        tree(("K1", "O1", 1.0), ("K2", "O1", bad)),
        {"K1": clean("K1", 20.0), "K2": clean("K2", 90.0)},
        {},
    )
    o1 = result.objectives["O1"]
    assert o1.progress_pct == 20.0
    assert [p.weight for p in o1.parts] == [1.0, 0.0]
    assert o1.problems == (f"weight {bad:g} of K2 is not positive: K2 is left out",)


def test_weights_on_only_some_parts_count_every_part_equally_with_a_note() -> None:
    result = roll_up(
        tree(("K1", "O1", 0.9), ("K2", "O1", None)),
        {"K1": clean("K1", 100.0), "K2": clean("K2", 0.0)},
        {},
    )
    o1 = result.objectives["O1"]
    assert o1.progress_pct == 50.0
    assert o1.notes == ("weights are missing for K2: every part counts equally",)


def test_confidence_is_the_measured_weight_lowered_by_doubts() -> None:
    doubtful = KrMeasurement("K2", COUNT, 0.0, 0.0, notes=("matched no items: taken as 0",))
    failed = KrMeasurement("K3", COUNT, None, None, problems=("the count query failed: 500",))
    result = roll_up(
        tree(("K1", "O1", None), ("K2", "O1", None), ("K3", "O1", None), ("K4", "O1", None)),
        {"K1": clean("K1", 80.0), "K2": doubtful, "K3": failed},
        {},
    )
    o1 = result.objectives["O1"]
    # K1 counts 1, K2 0.5, K3 (failed) and K4 (not measured) 0, each a quarter of the weight.
    assert o1.confidence == 0.375
    assert o1.progress_pct == 40.0  # the mean of the measured parts only
    assert o1.problems == (
        "key result K3: the count query failed: 500",
        "key result K4 was not measured this run",
    )


def test_child_objectives_roll_up_into_their_parent() -> None:
    result = roll_up(
        tree(("K1", "O1", None), ("K2", "O2", None), nested=True),
        {"K1": clean("K1", 100.0), "K2": clean("K2", 50.0)},
        {},
    )
    assert list(result.objectives) == ["O1", "O2"]
    assert result.objectives["O2"].progress_pct == 50.0
    o1 = result.objectives["O1"]
    assert [(p.id, p.is_key_result) for p in o1.parts] == [("K1", True), ("O2", False)]
    assert o1.progress_pct == 75.0 and o1.confidence == 1.0


def test_an_objective_with_nothing_to_measure_says_so() -> None:
    o1 = roll_up(tree(), {}, {}).objectives["O1"]
    assert (o1.progress_pct, o1.confidence) == (None, 0.0)
    assert o1.problems == ("has no key results and no child objectives: nothing to measure",)


def test_aligned_work_is_counted_once_per_objective_and_up_the_tree() -> None:
    shared = AlignedWork(("jira", "E-1"), 8.0)
    result = roll_up(
        tree(("K1", "O1", None), ("K2", "O2", None), ("K3", "O2", None), nested=True),
        {},
        {
            "K1": [AlignedWork(("jira", "E-2"), 5.0)],
            "K2": [shared, AlignedWork(("ado", "7"), None)],
            "K3": [shared, AlignedWork(("ado", "8"), 0.0)],
        },
    )
    assert result.key_results["K2"].work == WorkTotals(2, 8.0, 1)
    assert result.objectives["O2"].work == WorkTotals(3, 8.0, 2)
    assert result.objectives["O1"].work == WorkTotals(4, 13.0, 2)
