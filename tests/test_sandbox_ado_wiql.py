"""The WIQL subset of the Azure DevOps sandbox: parsing, meaning and results (no HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.sandbox.ado_workitems import WorkItemStore
from connectors.sandbox.wiql import (
    And,
    Condition,
    Constant,
    FieldRef,
    Macro,
    Not,
    Or,
    WiqlError,
    parse,
)
from connectors.sandbox.wiql_eval import QueryContext, compile_query, parse_date
from tests.sandbox_ado_support import BASE, seed_item, small_portfolio

NOW = BASE + timedelta(days=1)


@pytest.fixture(scope="module")
def store() -> WorkItemStore:
    store = WorkItemStore("Portfolio", lambda: NOW)
    store.load(small_portfolio())
    return store


def run(store: WorkItemStore, wiql: str, *, time_precision: bool = False) -> list[int]:
    context = QueryContext("Portfolio", NOW.date(), time_precision, frozenset(store.area_paths))
    return store.query(compile_query(parse(wiql), context))


def error_of(store: WorkItemStore, wiql: str, *, time_precision: bool = False) -> str:
    with pytest.raises(WiqlError) as raised:
        run(store, wiql, time_precision=time_precision)
    return str(raised.value)


# -- parsing -----------------------------------------------------------------------------------
def test_parse_builds_the_tree_with_precedence_and_order() -> None:
    query = parse(
        "select [System.Id], [Title] from WorkItems where [State] = 'Active' or "
        "not ([System.Tags] contains 'KR-1' and [Effort] >= 3) order by [Changed Date] desc, ID"
    )
    assert [column.name for column in query.columns] == ["System.Id", "Title"]
    assert isinstance(query.where, Or)
    first, second = query.where.items
    assert first == Condition(
        FieldRef("State", "[State]"),
        "=",
        (Constant("Active", "'Active'"),),
        False,
        "[State] = 'Active'",
    )
    assert isinstance(second, Not) and isinstance(second.item, And)
    assert [(ref.name, descending) for ref, descending in query.order] == [
        ("Changed Date", True),
        ("ID", False),
    ]


def test_parse_reads_negated_operators_lists_macros_and_escaped_quotes() -> None:
    query = parse(
        "SELECT [System.Id] FROM WorkItems WHERE [System.State] NOT IN ('Closed', 'Removed') "
        "AND [System.AreaPath] NOT UNDER 'Portfolio\\Web' "
        "AND [System.Title] CONTAINS WORDS 'it''s' "
        "AND [System.ChangedDate] > @Today - 7 AND [System.Tags] IS NOT EMPTY"
    )
    assert isinstance(query.where, And)
    ops = [(c.operator, c.negated) for c in query.where.items if isinstance(c, Condition)]
    assert ops == [("in", True), ("under", True), ("words", False), (">", False), ("empty", True)]
    words = query.where.items[2]
    assert isinstance(words, Condition) and words.values == (Constant("it's", "'it''s'"),)
    today = query.where.items[3]
    assert isinstance(today, Condition) and today.values == (Macro("@today", -7.0, "@Today - 7"),)


@pytest.mark.parametrize(
    ("wiql", "message"),
    [
        ("SELECT * FROM WorkItems", "Expecting field name. The error is caused by «*»."),
        (
            "SELECT [System.Id] WHERE [State] = 'x'",
            "TF51006: The query statement is missing a FROM",
        ),
        (
            "SELECT [System.Id] FROM WorkItems WHERE [State] 'x'",
            "Expecting comparison operator. The error is caused by «'x'».",
        ),
        (
            "SELECT [System.Id] FROM WorkItems WHERE [System.Id] IN ()",
            "Expecting constant value. The error is caused by «)».",
        ),
        ("SELECT [System.Id] FROM WorkItemLinks", "link queries"),
        ("SELECT [System.Id] FROM WorkItems ORDER BY", "Expecting field name."),
        ("SELECT [System.Id] FROM WorkItems WHERE ([State] = 'x'", "Expecting ')'"),
        ("", "The query is empty."),
    ],
)
def test_syntax_errors_use_the_service_wording(wiql: str, message: str) -> None:
    with pytest.raises(WiqlError) as raised:
        parse(wiql)
    assert message in str(raised.value)


# -- meaning -----------------------------------------------------------------------------------
def test_unknown_field_is_tf51005_naming_the_field(store: WorkItemStore) -> None:
    message = error_of(
        store, "SELECT [System.Id] FROM WorkItems WHERE [System.ClosedDate] > '2026-01-01'"
    )
    assert message == (
        "TF51005: The query references a field that does not exist. "
        "The error is caused by «[System.ClosedDate]»."
    )
    assert "«[Nope]»" in error_of(store, "SELECT [Nope] FROM WorkItems")


def test_fields_by_display_or_reference_name_and_project_macro(store: WorkItemStore) -> None:
    by_display = run(store, "SELECT [ID] FROM WorkItems WHERE [Work Item Type] = 'feature'")
    by_reference = run(
        store,
        "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project "
        "AND [System.WorkItemType] = 'Feature'",
    )
    assert by_display == by_reference == [101, 102]


def test_comparisons_on_numbers_in_lists_and_negations(store: WorkItemStore) -> None:
    assert run(store, "SELECT [ID] FROM WorkItems WHERE [Business Value] >= 8") == [100, 101]
    assert run(store, "SELECT [ID] FROM WorkItems WHERE [System.Id] IN (10, 104, 999)") == [10, 104]
    # `<>` and NOT IN include items without a value, as WIQL does.
    assert run(store, "SELECT [ID] FROM WorkItems WHERE [Business Value] <> 8") == [
        10,
        100,
        102,
        103,
        104,
    ]
    not_in = "SELECT [ID] FROM WorkItems WHERE [System.State] NOT IN ('Active', 'Closed')"
    assert run(store, not_in) == [10, 104]
    empty = "SELECT [ID] FROM WorkItems WHERE [Microsoft.VSTS.Common.TimeCriticality] = ''"
    assert run(store, empty) == [10, 102, 103, 104]


def test_under_matches_the_area_and_below_and_unknown_areas_are_refused(
    store: WorkItemStore,
) -> None:
    under = "SELECT [ID] FROM WorkItems WHERE [System.AreaPath] UNDER 'Portfolio\\Payments'"
    assert run(store, under) == [100, 101, 102, 103]
    exact = "SELECT [ID] FROM WorkItems WHERE [System.AreaPath] = 'portfolio\\payments\\cards'"
    assert run(store, exact) == [102]
    not_under = "SELECT [ID] FROM WorkItems WHERE [Area Path] NOT UNDER 'Portfolio\\Payments'"
    assert run(store, not_under) == [10, 104]
    missing = "SELECT [ID] FROM WorkItems WHERE [System.AreaPath] UNDER 'Portfolio\\Nope'"
    assert "TF51011: The specified area path does not exist." in error_of(store, missing)
    contains = "SELECT [ID] FROM WorkItems WHERE [System.AreaPath] CONTAINS 'Pay'"
    assert "cannot be used with area path fields" in error_of(store, contains)


def test_tags_contain_whole_tags_ignoring_case_and_text_contains_substrings(
    store: WorkItemStore,
) -> None:
    assert run(store, "SELECT [ID] FROM WorkItems WHERE [System.Tags] CONTAINS 'kr-10'") == [100]
    assert run(store, "SELECT [ID] FROM WorkItems WHERE [System.Tags] CONTAINS 'KR-1'") == []
    assert run(store, "SELECT [ID] FROM WorkItems WHERE [System.Title] CONTAINS 'click'") == [
        101,
        103,
    ]
    words = "SELECT [ID] FROM WorkItems WHERE [System.Title] CONTAINS WORDS 'one click mobile'"
    assert run(store, words) == [103]
    no_tag = "SELECT [ID] FROM WorkItems WHERE [System.Tags] NOT CONTAINS 'payments'"
    assert run(store, no_tag) == [10, 101, 102, 103, 104]


def test_and_or_not_and_parentheses(store: WorkItemStore) -> None:
    wiql = (
        "SELECT [ID] FROM WorkItems WHERE ([System.WorkItemType] = 'Feature' OR "
        "[System.WorkItemType] = 'Task') AND NOT [System.State] = 'Closed'"
    )
    assert run(store, wiql) == [101, 104]


def test_order_by_with_empty_values_first_and_descending(store: WorkItemStore) -> None:
    ranked = (
        "SELECT [ID] FROM WorkItems WHERE [System.WorkItemType] <> 'Key Result' "
        "ORDER BY [Stack Rank]"
    )
    ranks = run(store, ranked)
    assert ranks[:3] == [100, 101, 102]  # explicit ranks, then the sandbox's (position * 1000)
    by_changed = "SELECT [ID] FROM WorkItems ORDER BY [System.ChangedDate] DESC, [System.Id]"
    assert run(store, by_changed) == [103, 10, 102, 101, 100, 104]
    by_value = "SELECT [ID] FROM WorkItems ORDER BY [Business Value] DESC"
    assert run(store, by_value)[:3] == [100, 101, 102]
    assert run(store, by_value)[3:] == [10, 103, 104]  # no value: last when descending


# -- dates and precision -----------------------------------------------------------------------
def test_date_precision_compares_days_and_refuses_a_time(store: WorkItemStore) -> None:
    same_day = "SELECT [ID] FROM WorkItems WHERE [System.ChangedDate] = '2026-11-20'"
    assert run(store, same_day) == [10, 103]  # 10:00 and 13:00 on the day
    after = "SELECT [ID] FROM WorkItems WHERE [System.ChangedDate] > '11/19/2026'"
    assert run(store, after) == [10, 103]
    timed = "SELECT [ID] FROM WorkItems WHERE [System.ChangedDate] >= '2026-11-20T12:00:00Z'"
    assert error_of(store, timed) == (
        "You cannot supply a time with the date when running a query using date precision. "
        "The error is caused by «[System.ChangedDate] >= '2026-11-20T12:00:00Z'»."
    )


def test_time_precision_compares_instants(store: WorkItemStore) -> None:
    timed = "SELECT [ID] FROM WorkItems WHERE [System.ChangedDate] >= '2026-11-20T12:00:00Z'"
    assert run(store, timed, time_precision=True) == [103]
    offset = "SELECT [ID] FROM WorkItems WHERE [System.ChangedDate] > '2026-11-20T11:00:00+02:00'"
    assert run(store, offset, time_precision=True) == [10, 103]
    midnight = "SELECT [ID] FROM WorkItems WHERE [System.ChangedDate] < '2026-11-19'"
    assert run(store, midnight, time_precision=True) == [100, 101, 104]


def test_today_macro_counts_days_back_from_the_clock(store: WorkItemStore) -> None:
    # NOW is 2026-11-21: @Today - 1 is the 20th; with date precision the 20th itself counts.
    recent = "SELECT [ID] FROM WorkItems WHERE [System.ChangedDate] >= @Today - 1"
    assert run(store, recent) == [10, 103]
    week = "SELECT [ID] FROM WorkItems WHERE [System.ChangedDate] >= @today - 7 ORDER BY [ID]"
    assert run(store, week) == [10, 100, 101, 102, 103]


def test_changed_since_index_gives_the_same_answer_as_a_full_scan() -> None:
    items = [seed_item(n, updated=BASE - timedelta(hours=n)) for n in range(1, 400)]
    store = WorkItemStore("Portfolio", lambda: NOW)
    store.load(items)
    indexed = run(store, "SELECT [ID] FROM WorkItems WHERE [System.ChangedDate] >= '2026-11-15'")
    scanned = run(store, "SELECT [ID] FROM WorkItems WHERE NOT [System.ChangedDate] < '2026-11-15'")
    assert indexed == scanned == list(range(1, 131))  # 2026-11-20 10:00 minus 130 hours is the 15th


@pytest.mark.parametrize(
    ("text", "expected", "has_time"),
    [
        ("2026-11-20", datetime(2026, 11, 20, tzinfo=UTC), False),
        ("2026-11-20T10:00:00Z", datetime(2026, 11, 20, 10, tzinfo=UTC), True),
        (
            "2026-11-20T10:00:00.123+01:00",
            datetime(2026, 11, 20, 9, 0, 0, 123000, tzinfo=UTC),
            True,
        ),
        ("11/20/2026", datetime(2026, 11, 20, tzinfo=UTC), False),
        ("yesterday", None, False),
    ],
)
def test_parse_date_forms(text: str, expected: datetime | None, has_time: bool) -> None:
    assert parse_date(text) == (expected, has_time if expected else False)
