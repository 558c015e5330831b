"""Alignment engine: every evidence path, inheritance, cycles, scope, coverage and the figures."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from spm_sync.core.domain import KeyResult, Level, Link, Objective, StatusCategory, WorkItem
from spm_sync.engines.alignment import Alignment, AlignmentResult, Via, align
from spm_sync.engines.alignment_rules import (
    AlignmentRules,
    AlignmentScope,
    ConnectionAlignment,
    KeyResultRule,
)

NOW = datetime(2026, 3, 1, tzinfo=UTC)
JIRA = "jira"
ADO = "ado"
TODO, DOING, DONE = StatusCategory.TODO, StatusCategory.IN_PROGRESS, StatusCategory.DONE

OBJECTIVES = (Objective("O1", "Grow revenue"),)
KEY_RESULTS = (
    KeyResult("growth-1", "O1", "Trial conversion 6%", aliases=("conversion", "PAY-900")),
    KeyResult("KR-7", "O1", "Churn below 2%"),
    KeyResult("payments-3", "O1", "Five new payment methods"),
    KeyResult("idle-9", "O1", "Nothing moves this one"),
)
RULES = AlignmentRules(
    connections=(
        ConnectionAlignment(JIRA, link_types=("Drives", "relates to"), key_result_types=("KR",)),
        ConnectionAlignment(ADO, label_prefix="okr:", link_types=("System.LinkTypes.Related",)),
    )
)


def item(key: str, **fields: Any) -> WorkItem:
    defaults: dict[str, Any] = {
        "connection": JIRA,
        "id": key,
        "type": "Epic",
        "level": Level.EPIC,
        "title": f"title of {key}",
        "status": "Open",
        "status_category": TODO,
        "updated": NOW,
        "revision": "1",
    }
    defaults.update(fields)
    return WorkItem(key=key, **defaults)


def run(items: list[WorkItem], rules: AlignmentRules = RULES, **kwargs: Any) -> AlignmentResult:
    return align(items, KEY_RESULTS, rules, OBJECTIVES, **kwargs)


def found(result: AlignmentResult, key: str, connection: str = JIRA) -> list[Alignment]:
    return list(result.alignments.get((connection, key), ()))


def reasons(result: AlignmentResult) -> dict[str, str]:
    return {orphan.item_key: orphan.reason for orphan in result.orphans}


# --- labels ------------------------------------------------------------------------------------


def test_label_names_key_result_case_insensitively() -> None:
    result = run([item("PAY-1", labels=("KR-Growth-1", "backend"))])
    assert found(result, "PAY-1") == [
        Alignment(JIRA, "PAY-1", "growth-1", Via.LABEL, ("PAY-1",), "KR-Growth-1")
    ]
    assert result.orphans == ()


def test_label_names_alias_or_whole_label_id() -> None:
    result = run([item("PAY-1", labels=("kr-Conversion",)), item("PAY-2", labels=("kr-7",))])
    assert [a.kr_id for a in found(result, "PAY-1")] == ["growth-1"]
    # "kr-7" names no id "7"; the whole label is the id "KR-7".
    assert [a.kr_id for a in found(result, "PAY-2")] == ["KR-7"]


def test_connection_label_prefix_applies_only_there() -> None:
    result = run(
        [
            item("11", connection=ADO, labels=("OKR:payments-3",)),
            item("12", connection=ADO, labels=("kr-payments-3",)),
        ]
    )
    assert [a.kr_id for a in found(result, "11", ADO)] == ["payments-3"]
    assert found(result, "12", ADO) == []
    assert reasons(result)["12"] == "no okr: label, no OKR link, no parent"


def test_unknown_key_result_label_is_warned_and_explained() -> None:
    result = run([item("PAY-1", labels=("kr-typo",)), item("PAY-2", labels=("KR-Typo",))])
    assert result.alignments == {}
    assert reasons(result) == {
        "PAY-1": "label kr-typo names no known key result, no OKR link, no parent",
        "PAY-2": "label KR-Typo names no known key result, no OKR link, no parent",
    }
    assert result.warnings == ("jira: label 'kr-typo' names no known key result (on PAY-1, PAY-2)",)


def test_ignored_label_is_not_read_as_a_key_result() -> None:
    rules = AlignmentRules(connections=RULES.connections, ignored_labels=("kr-none",))
    result = run([item("PAY-1", labels=("kr-none",))], rules)
    assert result.warnings == ()
    assert reasons(result)["PAY-1"] == "no kr- label, no OKR link, no parent"


# --- links -------------------------------------------------------------------------------------


def test_outward_link_to_key_result_item() -> None:
    kr_item = item("PAY-900", type="KR", level=None)
    work = item("PAY-5", links=(Link("drives", "outward", "PAY-900"),))
    result = run([kr_item, work])
    assert found(result, "PAY-5") == [
        Alignment(JIRA, "PAY-5", "growth-1", Via.LINK, ("PAY-5", "PAY-900"), "drives")
    ]
    assert found(result, "PAY-900") == []  # a Key Result item is not work


def test_link_to_key_result_alias_that_was_not_pulled() -> None:
    result = run([item("PAY-5", links=(Link("Relates To", "outward", "pay-900"),))])
    assert [(a.kr_id, a.via) for a in found(result, "PAY-5")] == [("growth-1", Via.LINK)]


def test_inward_link_stored_only_on_the_key_result_item() -> None:
    kr_item = item("PAY-900", type="KR", level=None, links=(Link("Drives", "outward", "PAY-5"),))
    result = run([kr_item, item("PAY-5")])
    assert found(result, "PAY-5") == [
        Alignment(JIRA, "PAY-5", "growth-1", Via.LINK, ("PAY-5", "PAY-900"), "Drives")
    ]


def test_link_of_other_type_does_not_align() -> None:
    kr_item = item("PAY-900", type="KR", level=None)
    work = item("PAY-5", links=(Link("Blocks", "outward", "PAY-900"),))
    result = run([kr_item, work])
    assert reasons(result)["PAY-5"] == "no kr- label, no OKR link, no parent"


def test_link_to_ordinary_item_is_named_in_the_reason() -> None:
    result = run([item("PAY-5", links=(Link("Drives", "outward", "PAY-6"),)), item("PAY-6")])
    assert reasons(result)["PAY-5"] == (
        "no kr- label, OKR link to PAY-6, which is not a key result, no parent"
    )


def test_azure_devops_related_link_both_sides_aligns_once() -> None:
    work = item(
        "41",
        connection=ADO,
        links=(Link("System.LinkTypes.Related", "outward", "900"),),
    )
    rules = AlignmentRules(
        connections=(
            ConnectionAlignment(
                ADO, link_types=("system.linktypes.related",), key_result_types=("Key Result",)
            ),
        ),
    )
    kr_item = item(
        "900",
        connection=ADO,
        type="Key Result",
        level=None,
        links=(Link("System.LinkTypes.Related", "outward", "41"),),
    )
    result = align([kr_item, work], (KeyResult("retention", "O1", "R", aliases=("900",)),), rules)
    assert found(result, "41", ADO) == [
        Alignment(ADO, "41", "retention", Via.LINK, ("41", "900"), "System.LinkTypes.Related")
    ]


def test_link_cycles_terminate_and_reasons_name_the_dead_ends() -> None:
    items = [
        item(
            "PAY-1", links=(Link("Drives", "outward", "PAY-2"), Link("Drives", "inward", "PAY-2"))
        ),
        item(
            "PAY-2", links=(Link("Drives", "outward", "PAY-1"), Link("Drives", "inward", "PAY-1"))
        ),
        item("PAY-3", links=(Link("Drives", "outward", "PAY-3"),)),  # links to itself
    ]
    result = run(items)
    assert result.alignments == {}
    assert reasons(result) == {
        "PAY-1": "no kr- label, OKR link to PAY-2, which is not a key result, no parent",
        "PAY-2": "no kr- label, OKR link to PAY-1, which is not a key result, no parent",
        "PAY-3": "no kr- label, OKR link to PAY-3, which is not a key result, no parent",
    }


def test_key_result_items_linking_each_other_and_back_terminate() -> None:
    items = [
        item("PAY-900", type="KR", level=None, links=(Link("Drives", "outward", "PAY-901"),)),
        item("PAY-901", type="KR", level=None, links=(Link("Drives", "outward", "PAY-900"),)),
        item("PAY-5", links=(Link("Drives", "outward", "PAY-900"),)),
    ]
    result = run(items)
    assert [a.kr_id for a in found(result, "PAY-5")] == ["growth-1"]
    assert result.warnings == (
        "jira: PAY-901 (type 'KR') is not in the OKR set; registered as key result PAY-901 "
        "under unlisted:jira",
    )


# --- Key Result items not in the OKR set -------------------------------------------------------


def test_unknown_key_result_item_is_registered_with_a_warning() -> None:
    kr_item = item("PAY-950", type="KR", level=None, title="NPS above 40")
    result = run([kr_item, item("PAY-5", links=(Link("Drives", "outward", "PAY-950"),))])
    assert [a.kr_id for a in found(result, "PAY-5")] == ["PAY-950"]
    registered = [kr for kr in result.key_results if kr.id == "PAY-950"]
    assert registered == [KeyResult("PAY-950", "unlisted:jira", "NPS above 40")]
    assert [objective.id for objective in result.objectives] == ["O1", "unlisted:jira"]
    assert "PAY-950 (type 'KR') is not in the OKR set" in result.warnings[0]


def test_unknown_key_result_item_ignored_when_registration_is_off() -> None:
    rules = AlignmentRules(connections=RULES.connections, register_tracker_key_results=False)
    kr_item = item("PAY-950", type="KR", level=None)
    result = run([kr_item, item("PAY-5", links=(Link("Drives", "outward", "PAY-950"),))], rules)
    assert found(result, "PAY-5") == []
    assert [kr.id for kr in result.key_results] == [kr.id for kr in KEY_RESULTS]
    assert result.warnings == (
        "jira: PAY-950 (type 'KR') is not in the OKR set; links to it and its children do not "
        "count",
    )
    assert reasons(result)["PAY-5"] == (
        "no kr- label, OKR link to PAY-950, which is not a key result, no parent"
    )


# --- rules -------------------------------------------------------------------------------------


def rule_run(rule: KeyResultRule, items: list[WorkItem]) -> AlignmentResult:
    return run(items, AlignmentRules(connections=RULES.connections, rules=(rule,)))


def test_rule_by_project() -> None:
    result = rule_run(
        KeyResultRule("payments-3", project="pay"),
        [item("PAY-1", project="PAY"), item("GRO-1", project="GRO")],
    )
    assert found(result, "PAY-1") == [
        Alignment(JIRA, "PAY-1", "payments-3", Via.RULE, ("PAY-1",), "rule project pay")
    ]
    assert found(result, "GRO-1") == []


def test_rule_by_area_path_prefix_matches_sub_areas_only() -> None:
    rule = KeyResultRule("payments-3", team="Contoso\\Payments")
    items = [
        item("1", connection=ADO, team="Contoso\\Payments"),
        item("2", connection=ADO, team="contoso\\payments\\Checkout"),
        item("3", connection=ADO, team="Contoso\\PaymentsOps"),
        item("4", connection=ADO, team="Contoso"),
    ]
    result = rule_run(rule, items)
    assert sorted(ref[1] for ref in result.alignments) == ["1", "2"]


def test_project_rule_with_area_path_matches_azure_devops_area() -> None:
    rule = KeyResultRule("payments-3", project="Contoso\\Payments")
    items = [
        item("1", connection=ADO, project="Contoso", team="Contoso\\Payments\\Checkout"),
        item("2", connection=ADO, project="Contoso", team="Contoso\\Identity"),
    ]
    assert sorted(ref[1] for ref in rule_run(rule, items).alignments) == ["1"]


def test_rule_by_component_and_connection() -> None:
    rule = KeyResultRule("KR-7", component="Billing", connection=JIRA)
    items = [
        item("PAY-1", components=("UI", "billing")),
        item("PAY-2", components=("UI",)),
        item("9", connection=ADO, components=("Billing",)),
    ]
    result = rule_run(rule, items)
    assert list(result.alignments) == [(JIRA, "PAY-1")]
    assert found(result, "PAY-1")[0].detail == "rule component Billing"


def test_rule_does_not_apply_when_the_item_has_its_own_label() -> None:
    rule = KeyResultRule("KR-7", project="PAY")
    result = rule_run(rule, [item("PAY-1", project="PAY", labels=("kr-growth-1",))])
    assert [(a.kr_id, a.via) for a in found(result, "PAY-1")] == [("growth-1", Via.LABEL)]


def test_rule_naming_unknown_key_result_is_warned_and_ignored() -> None:
    result = rule_run(KeyResultRule("nope", project="PAY"), [item("PAY-1", project="PAY")])
    assert result.alignments == {}
    assert result.warnings == (
        "rule project PAY names key result 'nope', which is not in the OKR set; the rule is "
        "ignored",
    )


def test_rule_needs_a_condition() -> None:
    with pytest.raises(ValueError, match="needs a project, team or component"):
        KeyResultRule("KR-7")


# --- parents -----------------------------------------------------------------------------------


def test_parent_chain_inheritance_at_depth_three() -> None:
    items = [
        item("PAY-1", type="Initiative", level=Level.INITIATIVE, labels=("kr-growth-1",)),
        item("PAY-7", parent_key="PAY-1"),
        item("PAY-9", type="Feature", level=Level.FEATURE, parent_key="PAY-7"),
        item("PAY-12", type="Story", level=Level.STORY, parent_key="PAY-9"),
    ]
    result = run(items)
    assert found(result, "PAY-12") == [
        Alignment(
            JIRA,
            "PAY-12",
            "growth-1",
            Via.PARENT,
            ("PAY-12", "PAY-9", "PAY-7", "PAY-1"),
            "inherited from PAY-1 (label kr-growth-1)",
        )
    ]
    assert found(result, "PAY-7")[0].path == ("PAY-7", "PAY-1")
    assert result.orphans == ()


def test_nearest_aligned_ancestor_wins() -> None:
    items = [
        item("PAY-1", level=Level.INITIATIVE, labels=("kr-growth-1",)),
        item("PAY-2", parent_key="PAY-1", labels=("kr-KR-7",)),
        item("PAY-3", level=Level.STORY, parent_key="PAY-2"),
    ]
    assert [(a.kr_id, a.path) for a in found(run(items), "PAY-3")] == [("KR-7", ("PAY-3", "PAY-2"))]


def test_item_with_own_evidence_does_not_inherit() -> None:
    items = [
        item("PAY-1", labels=("kr-growth-1",)),
        item("PAY-2", level=Level.FEATURE, parent_key="PAY-1", labels=("kr-payments-3",)),
    ]
    assert [a.kr_id for a in found(run(items), "PAY-2")] == ["payments-3"]


def test_child_of_key_result_item_inherits_it() -> None:
    items = [item("PAY-900", type="KR", level=None), item("PAY-5", parent_key="PAY-900")]
    assert found(run(items), "PAY-5") == [
        Alignment(
            JIRA,
            "PAY-5",
            "growth-1",
            Via.PARENT,
            ("PAY-5", "PAY-900"),
            "inherited from key result item PAY-900",
        )
    ]


def test_multi_key_result_item_reports_all_and_children_inherit_all() -> None:
    kr_item = item("PAY-900", type="KR", level=None, links=(Link("Drives", "outward", "PAY-1"),))
    epic = item("PAY-1", labels=("kr-growth-1", "kr-KR-7", "kr-conversion", "kr-payments-3"))
    story = item("PAY-2", level=Level.STORY, parent_key="PAY-1")
    result = run([kr_item, epic, story])
    # growth-1 is named by a label, an alias label and the inward link: reported once, as label.
    assert [(a.kr_id, a.via) for a in found(result, "PAY-1")] == [
        ("growth-1", Via.LABEL),
        ("KR-7", Via.LABEL),
        ("payments-3", Via.LABEL),
    ]
    assert [(a.kr_id, a.via) for a in found(result, "PAY-2")] == [
        ("growth-1", Via.PARENT),
        ("KR-7", Via.PARENT),
        ("payments-3", Via.PARENT),
    ]


def test_parent_outside_pulled_scope() -> None:
    items = [
        item("PAY-12", level=Level.STORY, parent_key="PAY-9"),
        item("PAY-20", level=Level.STORY, parent_key="PAY-21"),
        item("PAY-21", level=Level.FEATURE, parent_key="PAY-99"),
    ]
    assert reasons(run(items)) == {
        "PAY-12": "no kr- label, no OKR link, parent PAY-9 is not in the pulled scope",
        "PAY-20": "no kr- label, no OKR link, parent PAY-21 is itself unaligned "
        "(chain stops at PAY-99, which is not in the pulled scope)",
        "PAY-21": "no kr- label, no OKR link, parent PAY-99 is not in the pulled scope",
    }


def test_unaligned_parent_chain_reasons() -> None:
    items = [
        item("PAY-1", level=Level.INITIATIVE),
        item("PAY-7", parent_key="PAY-1"),
        item("PAY-12", level=Level.STORY, parent_key="PAY-7"),
    ]
    assert reasons(run(items)) == {
        "PAY-1": "no kr- label, no OKR link, no parent",  # initiatives are in scope by default
        "PAY-7": "no kr- label, no OKR link, parent PAY-1 is itself unaligned",
        "PAY-12": "no kr- label, no OKR link, parent PAY-7 is itself unaligned "
        "(chain ends at PAY-1, which has no parent)",
    }


def test_parent_cycle_terminates_and_is_reported() -> None:
    items = [
        item("PAY-3", parent_key="PAY-5"),
        item("PAY-5", parent_key="PAY-8"),
        item("PAY-8", parent_key="PAY-3"),
        item("PAY-12", level=Level.STORY, parent_key="PAY-5"),
    ]
    result = run(items)
    assert result.alignments == {}
    assert reasons(result) == {
        "PAY-3": "no kr- label, no OKR link, parent chain has a cycle at PAY-3",
        "PAY-5": "no kr- label, no OKR link, parent chain has a cycle at PAY-3",
        "PAY-8": "no kr- label, no OKR link, parent chain has a cycle at PAY-3",
        "PAY-12": "no kr- label, no OKR link, parent chain has a cycle at PAY-3",
    }
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith("jira: parent cycle PAY-3 → PAY-5 → PAY-8 → PAY-3;")


def test_self_parent_is_a_cycle() -> None:
    result = run([item("PAY-3", parent_key="PAY-3")])
    assert reasons(result)["PAY-3"].endswith("parent chain has a cycle at PAY-3")


def test_cycle_with_an_aligned_member_aligns_the_rest() -> None:
    items = [
        item("PAY-3", parent_key="PAY-5"),
        item("PAY-5", parent_key="PAY-3", labels=("kr-growth-1",)),
    ]
    result = run(items)
    assert [(a.kr_id, a.path) for a in found(result, "PAY-3")] == [("growth-1", ("PAY-3", "PAY-5"))]
    assert result.warnings == ()


def test_deep_chain_does_not_recurse() -> None:
    depth = 1500  # deeper than Python's default recursion limit
    items = [item("DEEP-0", labels=("kr-growth-1",))] + [
        item(f"DEEP-{n}", parent_key=f"DEEP-{n - 1}") for n in range(1, depth)
    ]
    result = run(list(reversed(items)))
    assert found(result, f"DEEP-{depth - 1}")[0].path == tuple(
        f"DEEP-{n}" for n in reversed(range(depth))
    )
    assert result.aligned_count == depth


def test_parents_are_per_connection() -> None:
    items = [
        item("1", connection=JIRA, labels=("kr-growth-1",)),
        item("2", connection=ADO, parent_key="1"),
    ]
    assert reasons(run(items))["2"].endswith("parent 1 is not in the pulled scope")


# --- scope, coverage, figures ------------------------------------------------------------------


def test_done_and_out_of_scope_items_are_never_orphans() -> None:
    items = [
        item("PAY-1", status_category=DONE),
        item("PAY-2", type="Sub-task", level=Level.TASK),
        item("PAY-3", type="Widget", level=None),
        item("PAY-4", level=Level.INITIATIVE),  # in scope by default, like epics
        item("PAY-5", status_category=DOING),
    ]
    result = run(items)
    assert [orphan.item_key for orphan in result.orphans] == ["PAY-4", "PAY-5"]
    assert result.in_scope_count == 2


def test_custom_scope_levels_and_statuses() -> None:
    rules = AlignmentRules(
        connections=RULES.connections,
        scope=AlignmentScope(levels=(Level.EPIC,), status_categories=(DOING,)),
    )
    items = [
        item("PAY-1", status_category=DOING),
        item("PAY-2", status_category=TODO),
        item("PAY-3", level=Level.FEATURE, status_category=DOING),
    ]
    assert [orphan.item_key for orphan in run(items, rules).orphans] == ["PAY-1"]


def test_uncovered_key_results_and_done_only_work() -> None:
    items = [
        item("PAY-1", labels=("kr-growth-1",), status_category=TODO),
        item("PAY-2", labels=("kr-KR-7",), status_category=DONE),
        item("PAY-3", labels=("kr-KR-7",), status_category=DONE),
        item("PAY-4", labels=("kr-payments-3",), type="Sub-task", level=Level.TASK),
        item("PAY-5", labels=("kr-idle-9",), status_category=DONE),
        item("PAY-6", labels=("kr-idle-9",), status_category=DOING),
    ]
    rules = AlignmentRules(
        connections=RULES.connections,
        scope=AlignmentScope(status_categories=(TODO, DONE)),  # In Progress is out of scope
    )
    result = run(items, rules)
    assert [(u.kr_id, u.reason) for u in result.uncovered] == [
        ("KR-7", "only Done work (2 items): no active work"),
        ("payments-3", "only work outside the scope levels (1 item)"),
        (
            "idle-9",
            "no in-scope active work (aligned items are outside the scope statuses)",
        ),
    ]


def test_coverage_status_mix_and_job_size() -> None:
    items = [
        item("PAY-1", labels=("kr-growth-1",), status_category=DOING, job_size=8.0),
        item("PAY-2", level=Level.FEATURE, parent_key="PAY-1", job_size=3.0),
        item("PAY-3", level=Level.STORY, parent_key="PAY-2", status_category=DONE),
        item("PAY-4", level=Level.TASK, parent_key="PAY-2", job_size=100.0),
    ]
    coverage = run(items).coverage["growth-1"]
    assert coverage.items == ((JIRA, "PAY-1"), (JIRA, "PAY-2"), (JIRA, "PAY-3"))
    assert coverage.status_mix == {TODO: 1, DOING: 1, DONE: 1}
    assert coverage.active_items == 2
    assert coverage.job_size == 11.0


def test_alignment_percentages_by_count_and_job_size() -> None:
    items = [
        item("PAY-1", labels=("kr-growth-1",), job_size=8.0),  # aligned, 8
        item("PAY-2", level=Level.FEATURE, parent_key="PAY-1", job_size=5.0),  # aligned, 5
        item("PAY-3", level=Level.FEATURE, parent_key="PAY-1"),  # aligned, unsized
        item("PAY-4", job_size=13.0),  # orphan, 13
        item("PAY-5", job_size=0.0),  # orphan, size 0 is not usable
        item("PAY-6", job_size=float("nan")),  # orphan, not usable
        item("PAY-7", job_size=2.0, field_problems={"job_size": "'L' is not a number"}),
        item("PAY-8", labels=("kr-KR-7",), job_size=40.0, status_category=DONE),  # out of scope
    ]
    result = run(items)
    assert result.in_scope_count == 7
    assert result.aligned_count == 3
    assert result.alignment_pct_items == pytest.approx(100 * 3 / 7)
    assert result.in_scope_job_size == 26.0
    assert result.aligned_job_size == 13.0
    assert result.alignment_pct_job_size == pytest.approx(50.0)
    assert result.unsized_in_scope_count == 4


def test_percentages_are_none_without_scope() -> None:
    result = run([item("PAY-1", status_category=DONE)])
    assert result.alignment_pct_items is None
    assert result.alignment_pct_job_size is None


def test_alias_conflict_is_warned() -> None:
    key_results = (
        KeyResult("a", "O1", "A", aliases=("shared",)),
        KeyResult("b", "O1", "B", aliases=("Shared", "a")),
    )
    result = align([item("PAY-1", labels=("kr-shared",))], key_results, RULES)
    assert [x.kr_id for x in found(result, "PAY-1")] == ["a"]
    assert result.warnings == (
        "alias 'Shared' of key result b already names a; it keeps pointing at a",
        "alias 'a' of key result b already names a; it keeps pointing at a",
    )


def test_orphans_are_sorted_by_connection_then_natural_key() -> None:
    items = [item("PAY-10"), item("PAY-9"), item("2", connection=ADO), item("10", connection=ADO)]
    result = run(items)
    assert [(o.connection, o.item_key) for o in result.orphans] == [
        (ADO, "2"),
        (ADO, "10"),
        (JIRA, "PAY-9"),
        (JIRA, "PAY-10"),
    ]
    assert result.orphan_refs == {(ADO, "2"), (ADO, "10"), (JIRA, "PAY-9"), (JIRA, "PAY-10")}
