"""The OKR tree from the OKR file and tracker items: the file wins and conflicts are named,
gaps are filled with their source, objectives nest, cycles and orphan Key Results are reported."""

from __future__ import annotations

from datetime import date

from spm_sync.config.okrs import OkrSet
from spm_sync.core.domain import KeyResult, Objective
from spm_sync.engines.portfolio.okr_tree import (
    FILE_SOURCE,
    OkrKind,
    OkrRecord,
    merge_okrs,
    tracker_source,
)
from spm_sync.pipeline.portfolio_input import file_records

OBJ, KR = OkrKind.OBJECTIVE, OkrKind.KEY_RESULT
JIRA_O1 = tracker_source("jira", "OKR-1")
JIRA_K1 = tracker_source("jira", "OKR-2")


def objective(id_: str, source: str = FILE_SOURCE, **fields: object) -> OkrRecord:
    return OkrRecord(id_, fields.pop("title", f"Objective {id_}"), OBJ, source, **fields)  # type: ignore[arg-type]


def key_result(
    id_: str, parent: str | None, source: str = FILE_SOURCE, **fields: object
) -> OkrRecord:
    title = fields.pop("title", f"Key result {id_}")
    return OkrRecord(id_, title, KR, source, parent_id=parent, **fields)  # type: ignore[arg-type]


def test_file_and_tracker_records_merge_into_one_tree_in_order_of_first_record() -> None:
    tree = merge_okrs(
        [
            objective("O1"),
            key_result("K1", "O1", target=10, baseline=0),
            objective("O2", JIRA_O1),
            key_result("K2", "o2", JIRA_K1, target=5),
        ]
    )
    assert list(tree.objectives) == ["O1", "O2"]
    assert tree.roots == ("O1", "O2")
    assert tree.key_results_of == {"O1": ("K1",), "O2": ("K2",)}
    assert tree.key_results["K2"].parent_id == "O2"  # ids match ignoring case
    assert tree.key_results["K2"].source == JIRA_K1
    assert not tree.conflicts and not tree.problems


def test_a_conflict_keeps_the_file_value_and_names_both_sources() -> None:
    tree = merge_okrs(
        [
            key_result("K1", "O1", JIRA_K1, title="Raise NPS to 50", target=50, weight=0.5),
            objective("O1"),
            key_result("k1", "O1", title="Raise NPS to 40", target=40),
        ]
    )
    node = tree.key_results["k1"]
    assert (node.title, node.target, node.source) == ("Raise NPS to 40", 40, FILE_SOURCE)
    assert node.sources == (FILE_SOURCE, JIRA_K1)
    assert [
        (c.field, c.used_value, c.used_source, c.other_value, c.other_source)
        for c in tree.conflicts
    ] == [
        ("title", "Raise NPS to 40", FILE_SOURCE, "Raise NPS to 50", JIRA_K1),
        ("target", 40, FILE_SOURCE, 50, JIRA_K1),
    ]
    # The weight only the tracker states fills the gap, with its source, and is no conflict.
    assert node.weight == 0.5
    assert node.filled_from == {"weight": JIRA_K1}


def test_titles_differing_only_in_case_and_spacing_are_not_a_conflict() -> None:
    tree = merge_okrs(
        [objective("O1", title="Grow  revenue"), objective("O1", JIRA_O1, title="grow Revenue")]
    )
    assert not tree.conflicts


def test_a_parent_conflict_is_reported_and_the_file_parent_is_used() -> None:
    tree = merge_okrs(
        [
            objective("O1"),
            objective("O2"),
            key_result("K1", "O1"),
            key_result("K1", "O2", JIRA_K1),
        ]
    )
    assert tree.key_results_of == {"O1": ("K1",)}
    [conflict] = tree.conflicts
    assert (conflict.field, conflict.used_value, conflict.other_value) == ("parent_id", "O1", "O2")


def test_two_tracker_items_disagreeing_are_a_conflict_whatever_their_order() -> None:
    a = key_result("K1", "O1", tracker_source("ado", "7"), target=3)
    b = key_result("K1", "O1", tracker_source("jira", "X-1"), target=4)
    for records in ([objective("O1"), a, b], [objective("O1"), b, a]):
        tree = merge_okrs(records)
        assert tree.key_results["K1"].target == 3
        [conflict] = tree.conflicts
        assert (conflict.used_source, conflict.other_source) == (a.source, b.source)


def test_a_kind_conflict_is_reported_and_nothing_of_the_other_kind_is_taken() -> None:
    tree = merge_okrs([objective("O1"), objective("X"), key_result("X", "O1", JIRA_K1, target=3)])
    assert [(c.field, c.used_value, c.other_value, c.other_source) for c in tree.conflicts] == [
        ("kind", OkrKind.OBJECTIVE, OkrKind.KEY_RESULT, JIRA_K1)
    ]
    assert tree.roots == ("O1", "X")
    assert tree.objectives["X"].target is None and not tree.key_results


def test_objectives_nest_through_tracker_parents() -> None:
    tree = merge_okrs(
        [
            objective("O1"),
            objective("O2"),
            objective("O2", JIRA_O1, parent_id="O1"),  # fills the file's missing parent
            objective("O3", tracker_source("jira", "OKR-3"), parent_id="O2"),
        ]
    )
    assert tree.roots == ("O1",)
    assert [(depth, node.id) for depth, node in tree.walk()] == [(0, "O1"), (1, "O2"), (2, "O3")]
    assert tree.objectives["O2"].filled_from == {"parent_id": JIRA_O1}
    assert tree.objectives["O3"].parent_id == "O2"


def test_a_cycle_of_objectives_is_reported_once_with_its_chain_and_shown_at_the_top() -> None:
    tree = merge_okrs(
        [
            objective("A", JIRA_O1, parent_id="C"),
            objective("B", JIRA_O1, parent_id="A"),
            objective("C", JIRA_O1, parent_id="B"),
            objective("D", JIRA_O1, parent_id="B"),  # hangs below the cycle: stays there
        ]
    )
    [problem] = tree.problems
    assert problem.chain == ("A", "C", "B", "A")
    assert "cycle" in problem.reason and "A → C → B → A" in problem.reason
    assert tree.roots == ("A", "B", "C")
    assert tree.children == {"B": ("D",)}
    assert {node.id: node.parent_id for node in tree.objectives.values()}["D"] == "B"


def test_an_objective_that_is_its_own_parent_is_a_cycle() -> None:
    tree = merge_okrs([objective("A", JIRA_O1, parent_id="a")])
    [problem] = tree.problems
    assert problem.chain == ("A", "A")
    assert tree.roots == ("A",)


def test_a_missing_or_key_result_parent_puts_the_objective_at_the_top_with_a_problem() -> None:
    tree = merge_okrs(
        [
            objective("O1", JIRA_O1, parent_id="GONE"),
            key_result("K1", "O1"),
            objective("O2", JIRA_O1, parent_id="K1"),
        ]
    )
    assert tree.roots == ("O1", "O2")
    reasons = {p.id: p.reason for p in tree.problems}
    assert "'GONE' is neither in the OKR file nor among the tracker items" in reasons["O1"]
    assert "'K1' is a key result, not an objective" in reasons["O2"]


def test_orphan_key_results_are_listed_apart_with_the_reason() -> None:
    tree = merge_okrs(
        [
            objective("O1"),
            key_result("K1", "O1"),
            key_result("K2", "NOPE", JIRA_K1),
            key_result("K3", None, JIRA_K1),
            key_result("K4", "K1", JIRA_K1),
        ]
    )
    assert list(tree.key_results) == ["K1"]
    assert [node.id for node in tree.orphan_key_results] == ["K2", "K3", "K4"]
    reasons = [p.reason for p in tree.problems]
    assert reasons == [
        "orphan key result: its objective 'NOPE' is neither in the OKR file nor among the "
        "tracker items",
        "orphan key result: belongs to no objective",
        "orphan key result: its parent 'K1' is a key result, not an objective",
    ]


def test_the_okr_file_becomes_records() -> None:
    okrs = OkrSet(
        (Objective("O1", "Grow", target_date=date(2026, 12, 31)),),
        (KeyResult("K1", "O1", "Partners", target=250, current=120, baseline=100),),
    )
    tree = merge_okrs(file_records(okrs))
    assert tree.objectives["O1"].target_date == date(2026, 12, 31)
    kr = tree.key_results["K1"]
    assert (kr.parent_id, kr.target, kr.current, kr.baseline, kr.weight) == (
        "O1",
        250,
        120,
        100,
        None,
    )
