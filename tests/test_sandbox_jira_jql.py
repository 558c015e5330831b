"""The sandbox's JQL: parsing, Jira's error wording, clause semantics, dates and ordering."""

from __future__ import annotations

import pytest
import requests

from connectors.sandbox.jira_server import JiraSandbox
from connectors.sandbox.jql import And, Clause, Function, JqlError, Not, Or, Value, parse
from tests.jira_sandbox_seeds import FakeClock, small_portfolio


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cloud(clock: FakeClock) -> JiraSandbox:
    return JiraSandbox(small_portfolio(), clock=clock)


@pytest.fixture
def datacenter(clock: FakeClock) -> JiraSandbox:
    return JiraSandbox(small_portfolio(), flavour="datacenter", clock=clock)


def keys(sandbox: JiraSandbox, jql: str) -> list[str]:
    issues, _, _ = sandbox.run_jql(jql)
    return [issue.key for issue in issues]


def errors(sandbox: JiraSandbox, jql: str) -> list[str]:
    with pytest.raises(JqlError) as raised:
        sandbox.run_jql(jql)
    return raised.value.messages


# -- parser -----------------------------------------------------------------------------------
def test_precedence_not_over_and_over_or() -> None:
    query = parse('project = PAY OR NOT labels = x AND "Epic Link" in (PAY-1, "PAY-2")')
    assert isinstance(query.where, Or)
    left, right = query.where.parts
    assert left == Clause("project", "=", Value("PAY", False, 10), 0)
    assert isinstance(right, And)
    assert isinstance(right.parts[0], Not)
    epic = right.parts[1]
    assert isinstance(epic, Clause) and epic.field == "Epic Link" and epic.operator == "in"
    assert [value.text for value in epic.operand] == ["PAY-1", "PAY-2"]  # type: ignore[union-attr]


def test_order_by_functions_and_aliases() -> None:
    query = parse("issuetype in standardIssueTypes() && updated >= -2d order BY rank, key DESC")
    assert isinstance(query.where, And)
    functions = query.where.parts[0].operand  # type: ignore[union-attr]
    assert functions == (Function("standardIssueTypes", (), 13),)
    assert [(f.field, f.descending) for f in query.order_by] == [("rank", False), ("key", True)]
    assert parse("ORDER BY key").where is None


@pytest.mark.parametrize(
    ("jql", "message"),
    [
        (
            "project PAY",
            "Error in the JQL Query: Expecting operator but got 'PAY'. The valid operators are "
            "'=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'. "
            "(line 1, character 9)",
        ),
        (
            "project = PAY AND",
            "Error in the JQL Query: Expecting a field name before the end of the query.",
        ),
        (
            'summary ~ "open',
            "Error in the JQL Query: The quoted string 'open' has not been completed. "
            "(line 1, character 11)",
        ),
        (
            "project = PAY labels = x",
            "Error in the JQL Query: Expecting either 'OR' or 'AND' but got 'labels'. "
            "(line 1, character 15)",
        ),
        ("(project = PAY", "Error in the JQL Query: Expecting ')' before the end of the query."),
        (
            "project in PAY",
            "Error in the JQL Query: Expecting '(' but got 'PAY'. (line 1, character 12)",
        ),
        (
            "project = )",
            "Error in the JQL Query: Expecting either a value, list or function but got ')'. "
            "You must surround ')' in quotation marks to use it as a value. "
            "(line 1, character 11)",
        ),
        (
            "labels = R&D",
            "Error in the JQL Query: The character '&' is a reserved JQL character. You must "
            "enclose it in a string or use the escape '\\u0026' instead. (line 1, character 11)",
        ),
    ],
)
def test_syntax_errors_use_jira_wording(jql: str, message: str) -> None:
    with pytest.raises(JqlError) as raised:
        parse(jql)
    assert raised.value.messages == [message]


# -- clause semantics -------------------------------------------------------------------------
def test_project_type_status_and_category(cloud: JiraSandbox) -> None:
    assert keys(cloud, "project = web") == ["WEB-1", "WEB-2"]
    assert keys(cloud, 'project in ("Payments", WEB) AND issuetype = Epic') == ["PAY-2"]
    assert keys(cloud, "issuetype in subTaskIssueTypes()") == ["PAY-4"]
    assert keys(cloud, 'status = "in progress"') == ["OKR-1", "PAY-3"]
    assert keys(cloud, "statusCategory = Done") == ["PAY-4"]
    assert keys(cloud, "statusCategory in (indeterminate, 3)") == ["OKR-1", "PAY-3", "PAY-4"]
    assert keys(cloud, "statusCategory != Done AND project = WEB") == ["WEB-1", "WEB-2"]


def test_labels_are_case_insensitive_and_not_equal_skips_empty(cloud: JiraSandbox) -> None:
    assert keys(cloud, "labels = kr-1") == ["PAY-1", "PAY-3"]
    assert keys(cloud, "labels != kr-1") == []
    assert keys(cloud, "labels != ux") == ["PAY-1"]
    assert keys(cloud, "NOT labels = kr-1 AND project = PAY") == ["PAY-2", "PAY-4", "PAY-5"]
    assert keys(cloud, "labels is EMPTY AND project = WEB") == ["WEB-1", "WEB-2"]
    assert keys(cloud, "labels IS NOT empty") == ["PAY-1", "PAY-3"]
    assert keys(cloud, "labels = EMPTY AND project = OKR") == ["OKR-1"]


def test_keys_ids_and_their_errors(cloud: JiraSandbox) -> None:
    assert keys(cloud, "key in (PAY-3, pay-1, 10007) ORDER BY key") == ["PAY-1", "PAY-3", "WEB-1"]
    assert keys(cloud, "issuekey > PAY-3") == ["PAY-4", "PAY-5"]
    assert keys(cloud, "id <= 10002") == ["OKR-1", "PAY-1"]
    assert keys(cloud, "key != PAY-1 AND project = PAY") == ["PAY-2", "PAY-3", "PAY-4", "PAY-5"]
    assert errors(cloud, "key = PAY-99") == [
        "An issue with key 'PAY-99' does not exist for field 'key'."
    ]
    assert errors(cloud, "issuekey = nonsense") == [
        "The issue key 'nonsense' for field 'issuekey' is invalid."
    ]


def test_unknown_values_fields_and_operators(cloud: JiraSandbox) -> None:
    assert errors(cloud, "project = NOPE AND status = Limbo") == [
        "The value 'NOPE' does not exist for the field 'project'.",
        "The value 'Limbo' does not exist for the field 'status'.",
    ]
    assert errors(cloud, "colour = red") == [
        "Field 'colour' does not exist or you do not have permission to view it."
    ]
    assert errors(cloud, "project ~ PAY") == [
        "The operator '~' is not supported by the 'project' field."
    ]
    assert errors(cloud, "summary = x") == [
        "The operator '=' is not supported by the 'summary' field."
    ]


def test_lenient_validation_turns_value_errors_into_warnings(cloud: JiraSandbox) -> None:
    issues, warnings, _ = cloud.run_jql("project = NOPE OR project = WEB", strict=False)
    assert [issue.key for issue in issues] == ["WEB-1", "WEB-2"]
    assert warnings == ["The value 'NOPE' does not exist for the field 'project'."]


def test_hierarchy_fields_differ_by_flavour(cloud: JiraSandbox, datacenter: JiraSandbox) -> None:
    assert keys(cloud, "parent = PAY-1") == ["PAY-2"]
    assert keys(cloud, "parent in (PAY-2, PAY-3)") == ["PAY-3", "PAY-4"]
    assert keys(datacenter, "parent in (PAY-1, PAY-2, PAY-3)") == ["PAY-4"]
    assert keys(datacenter, '"Epic Link" = PAY-2') == ["PAY-3"]
    assert keys(datacenter, '"Parent Link" = PAY-1') == ["PAY-2"]
    assert keys(datacenter, "cf[12100] is EMPTY AND project = PAY") == [
        "PAY-1", "PAY-2", "PAY-4", "PAY-5",
    ]  # fmt: skip
    assert errors(cloud, '"Epic Link" = PAY-2') == [
        "Field 'Epic Link' does not exist or you do not have permission to view it."
    ]


def test_custom_fields_text_and_links(cloud: JiraSandbox) -> None:
    assert keys(cloud, '"Business Value" >= 6') == ["PAY-1"]
    assert keys(cloud, "cf[10013] = 0") == ["PAY-2"]
    assert keys(cloud, '"Job Size" is EMPTY AND project = PAY') == ["PAY-3", "PAY-4", "PAY-5"]
    assert keys(cloud, '"Risk Reduction | Opportunity Enablement" ~ big') == ["PAY-1"]
    assert keys(cloud, "Team = falcon") == ["PAY-1"]
    assert keys(cloud, "component = Checkout") == ["PAY-2"]
    assert keys(cloud, 'summary ~ "zürich"') == ["PAY-3"]
    assert keys(cloud, "issue in linkedIssues(OKR-1)") == ["PAY-2"]
    assert keys(cloud, 'issue in linkedIssues(PAY-2, "drives")') == ["OKR-1"]
    assert keys(cloud, 'issue in linkedIssues(OKR-1, "drives")') == []
    assert keys(cloud, 'issue in linkedIssues(OKR-1, "is driven by")') == ["PAY-2"]
    assert errors(cloud, '"Business Value" > lots') == [
        "The value 'lots' is not a valid number for the field 'Business Value'."
    ]


# -- dates --------------------------------------------------------------------------------
def test_relative_and_absolute_dates_at_minute_precision(cloud: JiraSandbox) -> None:
    # Seeds: PAY-3 updated 5 min ago, PAY-2 10 min ago, WEB-1 30 min ago (clock 12:00 UTC).
    assert keys(cloud, "updated >= -15m") == ["PAY-2", "PAY-3"]
    assert keys(cloud, 'updated >= "-31m"') == ["PAY-2", "PAY-3", "WEB-1"]
    assert keys(cloud, 'updated > "2025/06/02 11:50"') == ["PAY-3"]
    assert keys(cloud, 'updated >= "2025-06-02 11:50"') == ["PAY-2", "PAY-3"]
    assert keys(cloud, 'created < "2025/01/01" ') == ["PAY-5"]
    assert keys(cloud, 'updated < "-4w 2d"') == ["PAY-5"]
    assert keys(cloud, "updated >= startOfDay() AND updated <= now()") == [
        "OKR-1", "PAY-1", "PAY-2", "PAY-3", "WEB-1", "WEB-2",
    ]  # fmt: skip
    assert errors(cloud, 'updated >= "yesterday"') == [
        "Date value 'yesterday' for field 'updated' is invalid. Valid formats include: "
        "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period "
        "format e.g. '-5d', '4w 2d'."
    ]


def test_dates_are_read_in_the_users_time_zone(clock: FakeClock) -> None:
    sandbox = JiraSandbox(small_portfolio(), clock=clock, time_zone="Europe/Berlin")
    # 13:50 in Berlin (summer time) is 11:50 UTC.
    assert keys(sandbox, 'updated > "2025/06/02 13:50"') == ["PAY-3"]


def test_relative_dates_follow_the_server_clock(cloud: JiraSandbox, clock: FakeClock) -> None:
    assert keys(cloud, "updated >= -6m") == ["PAY-3"]
    clock.advance(minutes=2)
    assert keys(cloud, "updated >= -6m") == []


# -- order ----------------------------------------------------------------------------------
def test_order_by_fields_and_default(cloud: JiraSandbox) -> None:
    assert keys(cloud, "project = WEB ORDER BY key DESC") == ["WEB-2", "WEB-1"]
    assert keys(cloud, "project = PAY ORDER BY updated DESC")[:3] == ["PAY-3", "PAY-2", "PAY-1"]
    assert keys(cloud, "project = PAY") == ["PAY-1", "PAY-2", "PAY-3", "PAY-4", "PAY-5"]
    by_rank = keys(cloud, "project in (PAY, WEB, OKR) ORDER BY rank")
    assert by_rank == cloud.rank_order()
    assert keys(cloud, "project = PAY ORDER BY priority DESC, key DESC")[0] == "PAY-5"
    assert errors(cloud, "project = PAY ORDER BY labels") == [
        "Not able to sort using field 'labels'."
    ]
    too_many = ", ".join(["key"] * 8)
    assert errors(cloud, f"project = PAY ORDER BY {too_many}") == [
        "The ORDER BY clause can contain a maximum of 7 fields."
    ]


def test_jql_errors_answer_400_over_http(cloud: JiraSandbox) -> None:
    with cloud:
        response = requests.get(
            f"{cloud.url}/rest/api/3/search/jql",
            params={"jql": "project = PAY AND"},
            auth=cloud.basic_auth,
            timeout=10,
        )
    assert response.status_code == 400
    message = "Error in the JQL Query: Expecting a field name before the end of the query."
    assert response.json() == {"errorMessages": [message], "errors": {}}
