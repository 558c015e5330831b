"""Saved tracker queries against mocked HTTP (responses): request shapes, counts, error mapping.

The sandbox tests (`test_tracker_queries_sandbox.py`) check the answers against real queries;
these pin what is sent, how often, and what a refusal becomes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses

from connectors.base import (
    QueryAnswer,
    QueryingConnector,
    QueryMatch,
    QueryRefused,
    TrackerQuery,
)
from connectors.tracker_queries import AskedQuery, plan, without_order
from tests.azure_devops_fixtures import (
    ORG_URL,
    WIT,
    FakeAzureDevOps,
    error_body,
    make_connector,
    make_settings,
    validate_calls,
    work_item,
)
from tests.jira_fixtures import (
    CLOUD,
    DC,
    Sleeps,
    body,
    calls_to,
    connector,
    raw_issue,
    register_preamble,
    settings,
)

COUNT = f"{CLOUD}/rest/api/3/search/approximate-count"
SEARCH = f"{CLOUD}/rest/api/3/search/jql"
DC_SEARCH = f"{DC}/rest/api/2/search"
STORY_POINTS = "customfield_10016"
DONE = {"id": "5", "name": "Done", "statusCategory": {"id": 3, "key": "done", "name": "Done"}}
WIQL = "POST /contoso/Portfolio/_apis/wit/wiql"
BATCH = "POST /contoso/Portfolio/_apis/wit/workitemsbatch"


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def jira_error(*messages: str) -> dict[str, Any]:
    return {"errorMessages": list(messages), "errors": {}}


# -- the plan ----------------------------------------------------------------------------------
def test_each_distinct_query_is_asked_once_and_a_count_rides_on_the_items_of_its_text() -> None:
    queries = [
        TrackerQuery("a", " labels = kr-1 "),
        TrackerQuery("b", "labels = kr-1"),
        TrackerQuery("c", "labels = kr-2"),
        TrackerQuery("d", "labels = kr-2", want="items", field="Story Points"),
        TrackerQuery("e", "labels = kr-2", want="items"),
        TrackerQuery("f", "labels = kr-3", field="ignored for a count"),
    ]

    distinct, answered_by = plan(queries)

    assert distinct == [
        AskedQuery("labels = kr-1", "count", None),
        AskedQuery("labels = kr-2", "items", "Story Points"),
        AskedQuery("labels = kr-2", "items", None),
        AskedQuery("labels = kr-3", "count", None),
    ]
    assert answered_by["a"] == answered_by["b"]
    assert answered_by["c"] == answered_by["d"]


def test_without_order_drops_only_a_trailing_order_by() -> None:
    assert without_order("project = PAY ORDER BY rank ASC, key") == "project = PAY"
    assert without_order('summary ~ "order by x" order by "Story Points"') == (
        'summary ~ "order by x"'
    )
    assert without_order('summary ~ "order by x"') == 'summary ~ "order by x"'


# -- Jira Cloud --------------------------------------------------------------------------------
def test_cloud_count_is_one_approximate_count_request_per_distinct_query(
    rsps: responses.RequestsMock,
) -> None:
    register_preamble(rsps)
    counts = {"project = PAY AND labels = kr-1": 7, "issuetype = Epic": 0}

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        return 200, {}, json.dumps({"count": counts[json.loads(request.body or b"{}")["jql"]]})

    rsps.add_callback(responses.POST, COUNT, callback=answer)
    jira = connector()
    assert isinstance(jira, QueryingConnector)

    answers = jira.run_queries(
        [
            TrackerQuery("kr-1", "project = PAY AND labels = kr-1"),
            TrackerQuery("kr-1 again", "project = PAY AND labels = kr-1"),
            TrackerQuery("epics", "issuetype = Epic"),
        ]
    )

    assert answers == {
        "kr-1": QueryAnswer(7, approximate=True),
        "kr-1 again": QueryAnswer(7, approximate=True),
        "epics": QueryAnswer(0, approximate=True),
    }
    sent = sorted(body(call)["jql"] for call in calls_to(rsps, "POST", COUNT.removeprefix(CLOUD)))
    assert sent == ["issuetype = Epic", "project = PAY AND labels = kr-1"]
    assert all(
        set(body(call)) == {"jql"}
        for call in calls_to(rsps, "POST", "/rest/api/3/search/approximate-count")
    )
    assert jira.stats.by_endpoint["POST /rest/api/3/search/approximate-count"] == 2
    assert jira.stats.requests == 4  # serverInfo, field, 2 counts


def test_cloud_items_page_the_search_with_status_and_the_resolved_field(
    rsps: responses.RequestsMock,
) -> None:
    register_preamble(rsps)
    first = [
        raw_issue("PAY-1", 10001, status=DONE, **{STORY_POINTS: 5}),
        raw_issue("PAY-2", 10002, **{STORY_POINTS: "big"}),
    ]
    second = [raw_issue("PAY-3", 10003, status=DONE, **{STORY_POINTS: None})]
    rsps.post(SEARCH, json={"issues": first, "nextPageToken": "t-1", "isLast": False})
    rsps.post(SEARCH, json={"issues": second, "isLast": True})
    jira = connector()

    answers = jira.run_queries(
        [
            TrackerQuery("sum", "labels = kr-1 ORDER BY rank", want="items", field="Story Points"),
            TrackerQuery("count", "labels = kr-1 ORDER BY rank"),
        ]
    )

    assert answers["sum"] == QueryAnswer(
        3,
        matches=(
            QueryMatch("PAY-1", True, 5.0),
            QueryMatch("PAY-2", False, None),  # not a number: no value, never a zero
            QueryMatch("PAY-3", True, None),
        ),
    )
    assert answers["count"] == QueryAnswer(3)  # read off the items: exact, no count request
    searches = calls_to(rsps, "POST", "/rest/api/3/search/jql")
    assert [body(call) for call in searches] == [
        {"jql": "(labels = kr-1) ORDER BY key ASC", "fields": ["status", STORY_POINTS],
         "maxResults": 5000},
        {"jql": "(labels = kr-1) ORDER BY key ASC", "fields": ["status", STORY_POINTS],
         "maxResults": 5000, "nextPageToken": "t-1"},
    ]  # fmt: skip
    assert jira.stats.requests == 4


def test_a_rejected_query_is_refused_with_jiras_words_and_the_others_still_run(
    rsps: responses.RequestsMock,
) -> None:
    register_preamble(rsps)

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        jql = json.loads(request.body or b"{}")["jql"]
        if "labls" in jql:
            return 400, {}, json.dumps(jira_error("Field 'labls' does not exist."))
        return 200, {}, json.dumps({"count": 3})

    rsps.add_callback(responses.POST, COUNT, callback=answer)
    jira = connector()

    answers = jira.run_queries(
        [TrackerQuery("bad", "labls = kr-1"), TrackerQuery("good", "labels = kr-1")]
    )

    bad = answers["bad"]
    assert isinstance(bad, QueryRefused)
    assert "Jira rejected the request: Field 'labls' does not exist." in bad.reason
    assert answers["good"] == QueryAnswer(3, approximate=True)


def test_an_unknown_field_is_refused_with_close_matches_before_any_search(
    rsps: responses.RequestsMock,
) -> None:
    register_preamble(rsps)
    jira = connector()

    answers = jira.run_queries(
        [TrackerQuery("sum", "labels = kr-1", want="items", field="Story Pionts")]
    )

    refused = answers["sum"]
    assert isinstance(refused, QueryRefused)
    assert "'Story Pionts' does not exist" in refused.reason
    assert "Story Points (customfield_10016)" in refused.reason
    assert calls_to(rsps, "POST", "/rest/api/3/search/jql") == []


def test_a_query_still_throttled_after_the_retries_is_refused_alone(
    rsps: responses.RequestsMock,
) -> None:
    register_preamble(rsps)

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        if json.loads(request.body or b"{}")["jql"] == "labels = kr-1":
            limited = jira_error("Rate limit exceeded.")
            return 429, {"Retry-After": "1"}, json.dumps(limited)
        return 200, {}, json.dumps({"count": 2})

    rsps.add_callback(responses.POST, COUNT, callback=answer)
    sleeps = Sleeps()
    jira = connector(settings(retry={"max_attempts": 3, "max_wait_seconds": 5}), sleep=sleeps)

    answers = jira.run_queries(
        [TrackerQuery("throttled", "labels = kr-1"), TrackerQuery("fine", "labels = kr-2")]
    )

    refused = answers["throttled"]
    assert isinstance(refused, QueryRefused)
    assert "kept answering 429" in refused.reason
    assert answers["fine"] == QueryAnswer(2, approximate=True)
    assert jira.stats.by_endpoint["POST /rest/api/3/search/approximate-count"] == 4  # 3 + 1
    assert jira.stats.retries == 2 and len(sleeps) == 2


def test_a_connection_that_cannot_start_refuses_every_query(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{CLOUD}/rest/api/2/serverInfo", status=401, json=jira_error("no"))
    jira = connector()

    answers = jira.run_queries([TrackerQuery("a", "x = 1"), TrackerQuery("b", "y = 2")])

    assert set(answers) == {"a", "b"}
    assert all(isinstance(a, QueryRefused) and "HTTP 401" in a.reason for a in answers.values())


# -- Jira Data Center ----------------------------------------------------------------------------
def test_datacenter_count_is_a_search_for_no_issue_that_reads_the_exact_total(
    rsps: responses.RequestsMock,
) -> None:
    register_preamble(rsps, flavour="datacenter", base=DC)
    rsps.post(DC_SEARCH, json={"startAt": 0, "maxResults": 0, "total": 42, "issues": []})
    jira = connector(settings(url=DC, deployment="datacenter"))

    answers = jira.run_queries([TrackerQuery("n", "issuetype = Epic AND statusCategory = Done")])

    assert answers == {"n": QueryAnswer(42, approximate=False)}
    (call,) = calls_to(rsps, "POST", "/rest/api/2/search")
    assert body(call) == {
        "jql": "issuetype = Epic AND statusCategory = Done",
        "startAt": 0,
        "maxResults": 0,
    }
    assert jira.stats.requests == 3


def test_datacenter_items_are_keyset_paged_with_the_needed_fields(
    rsps: responses.RequestsMock,
) -> None:
    register_preamble(rsps, flavour="datacenter", base=DC)
    issues = [raw_issue(f"PAY-{n}", 10000 + n, **{STORY_POINTS: n}) for n in (1, 2)]
    rsps.post(DC_SEARCH, json={"startAt": 0, "maxResults": 1000, "total": 2, "issues": issues})
    jira = connector(settings(url=DC, deployment="datacenter"))

    answers = jira.run_queries(
        [TrackerQuery("sum", "labels = kr-1", want="items", field="customfield_10016")]
    )

    assert answers["sum"] == QueryAnswer(
        2, matches=(QueryMatch("PAY-1", False, 1.0), QueryMatch("PAY-2", False, 2.0))
    )
    (call,) = calls_to(rsps, "POST", "/rest/api/2/search")
    assert body(call) == {
        "jql": "(labels = kr-1) ORDER BY key ASC",
        "startAt": 0,
        "maxResults": 1000,
        "fields": ["status", STORY_POINTS],
    }


# -- Azure DevOps ------------------------------------------------------------------------------
class QueriedAzureDevOps(FakeAzureDevOps):
    """Answers WIQL from `answers`: the first key found in the query text decides the ids (or
    the error message, for a string)."""

    def __init__(
        self,
        mock: responses.RequestsMock,
        items: dict[int, Any],
        answers: dict[str, list[int] | str],
    ) -> None:
        self.answers = answers
        super().__init__(mock, items)

    def _wiql(self, request: Any) -> tuple[int, dict[str, str], str]:
        query = json.loads(request.body)["query"]
        self.wiql_queries.append(query)
        for needle, answer in self.answers.items():
            if needle in query:
                if isinstance(answer, str):
                    return 400, {"Content-Type": "application/json"}, json.dumps(error_body(answer))
                items = [{"id": i, "url": f"{ORG_URL}/_apis/wit/workItems/{i}"} for i in answer]
                result = {"queryType": "flat", "queryResultType": "workItem", "workItems": items}
                return 200, {"Content-Type": "application/json"}, json.dumps(result)
        raise AssertionError(f"unexpected WIQL: {query}")


@pytest.fixture
def ado_mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
        validate_calls(mock.calls)


def sent(mock: responses.RequestsMock, part: str) -> list[tuple[str, Any]]:
    """(URL, JSON body) of each request whose URL contains `part`."""
    return [
        (str(call.request.url), json.loads(call.request.body or b"{}"))
        for call in mock.calls
        if part in str(call.request.url)
    ]


def wiql_bodies(mock: responses.RequestsMock) -> list[str]:
    return [body["query"] for _, body in sent(mock, "/wiql")]


def test_ado_count_is_one_wiql_query_with_the_condition_in_the_project(
    ado_mock: responses.RequestsMock,
) -> None:
    QueriedAzureDevOps(ado_mock, {}, {"KR 1": [3, 5, 8]})
    ado = make_connector()
    assert isinstance(ado, QueryingConnector)

    answers = ado.run_queries([TrackerQuery("kr", "[System.Tags] CONTAINS 'KR 1'")])

    assert answers == {"kr": QueryAnswer(3)}
    assert wiql_bodies(ado_mock) == [
        "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project "
        "AND ([System.Tags] CONTAINS 'KR 1') ORDER BY [System.Id]"
    ]
    ((url, _),) = sent(ado_mock, "/wiql")
    assert "%24top" not in url and "$top" not in url
    assert ado.stats.by_endpoint[WIQL] == 1


def test_ado_whole_query_is_sent_as_written(ado_mock: responses.RequestsMock) -> None:
    whole = "SELECT [System.Id] FROM WorkItems WHERE [System.State] = 'Closed'"
    QueriedAzureDevOps(ado_mock, {}, {"Closed": [1]})
    answers = make_connector().run_queries([TrackerQuery("q", f"  {whole}\n")])
    assert answers == {"q": QueryAnswer(1)}
    assert wiql_bodies(ado_mock) == [whole]


def test_ado_items_are_read_200_a_batch_with_state_and_field(
    ado_mock: responses.RequestsMock,
) -> None:
    ids = list(range(1, 451))
    items = {
        i: work_item(
            i,
            **{
                "System.WorkItemType": "Epic" if i % 2 else "Bug",
                "System.State": "Closed" if i % 3 == 0 else "Active",
                "Microsoft.VSTS.Scheduling.Effort": i if i % 5 else "lots",
            },
        )
        for i in ids
    }
    items[7]["fields"]["System.State"] = "Parked"  # a custom state: the type's states are read
    QueriedAzureDevOps(ado_mock, items, {"KR 2": list(ids)})
    ado = make_connector(make_settings(workers=3))

    answers = ado.run_queries(
        [TrackerQuery("sum", "[System.Tags] CONTAINS 'KR 2'", want="items", field="effort")]
    )

    answer = answers["sum"]
    assert isinstance(answer, QueryAnswer) and answer.matches is not None
    assert answer.count == 450 and [m.key for m in answer.matches] == [str(i) for i in ids]
    by_key = {m.key: m for m in answer.matches}
    assert by_key["3"] == QueryMatch("3", True, 3.0)
    assert by_key["4"] == QueryMatch("4", False, 4.0)
    assert by_key["5"].value is None  # "lots" is not a number
    assert by_key["7"].done is False
    batches = [body for _, body in sent(ado_mock, "workitemsbatch")]
    assert sorted(len(b["ids"]) for b in batches) == [50, 200, 200]  # read in parallel
    assert batches[0]["fields"] == [
        "System.Id",
        "System.WorkItemType",
        "System.State",
        "Microsoft.VSTS.Scheduling.Effort",
    ]
    assert ado.stats.by_endpoint[BATCH] == 3
    assert ado.stats.by_endpoint["GET /contoso/Portfolio/_apis/wit/fields"] == 1
    states = "GET /contoso/Portfolio/_apis/wit/workitemtypes/{type}/states"
    assert ado.stats.by_endpoint[states] == 1  # Epic, for "Parked"; Bug's states are system ones


def test_ado_refusals_are_per_query(ado_mock: responses.RequestsMock) -> None:
    cap = (
        "VS402337: The number of work items returned exceeds the size limit of 20000. "
        "Change the query to return fewer items."
    )
    QueriedAzureDevOps(
        ado_mock,
        {},
        {
            "Everything": cap,
            "Broken": "Expecting constant value. The error is caused by «=».",
            "Nothing": [],
        },
    )
    ado = make_connector()

    answers = ado.run_queries(
        [
            TrackerQuery("cap", "[System.Title] CONTAINS 'Everything'"),
            TrackerQuery("syntax", "[System.State] = = 'Broken'"),
            TrackerQuery("none", "[System.Title] CONTAINS 'Nothing'", want="items"),
            TrackerQuery("field", "[System.Title] CONTAINS 'Nothing'", want="items", field="Efort"),
            TrackerQuery("links", "SELECT [System.Id] FROM WorkItemLinks WHERE x"),
        ]
    )

    assert isinstance(answers["cap"], QueryRefused)
    assert "more than 20,000 work items" in answers["cap"].reason
    assert answers["syntax"] == QueryRefused(
        "Azure DevOps rejected the query: Expecting constant value. The error is caused by «=»."
    )
    assert answers["none"] == QueryAnswer(0, matches=())
    assert isinstance(answers["field"], QueryRefused)
    assert "'Efort' does not exist" in answers["field"].reason
    assert "Effort (Microsoft.VSTS.Scheduling.Effort)" in answers["field"].reason
    assert isinstance(answers["links"], QueryRefused)
    assert ado.stats.by_endpoint[WIQL] == 3  # the unknown field and the link query ask nothing
    assert ado.stats.by_endpoint[BATCH] == 0


def test_ado_throttled_query_is_retried_by_the_policy(ado_mock: responses.RequestsMock) -> None:
    fake = QueriedAzureDevOps(ado_mock, {}, {"KR 3": [1, 2]})
    fake.fail("/wiql", 429, {"Retry-After": "2"})
    ado = make_connector()

    answers = ado.run_queries([TrackerQuery("kr", "[System.Tags] CONTAINS 'KR 3'")])

    assert answers == {"kr": QueryAnswer(2)}
    assert ado.stats.by_endpoint[WIQL] == 2 and ado.stats.throttled == 1
    assert f"{WIT}/wiql" in str(ado_mock.calls[-1].request.url)


def test_ado_items_queries_share_their_batches_and_read_each_item_once(
    ado_mock: responses.RequestsMock,
) -> None:
    items = {i: work_item(i, **{"Microsoft.VSTS.Common.BusinessValue": i}) for i in range(1, 120)}
    QueriedAzureDevOps(ado_mock, items, {"KR 1": list(range(1, 80)), "KR 2": list(range(60, 120))})
    ado = make_connector()

    answers = ado.run_queries(
        [
            TrackerQuery("one", "[System.Tags] CONTAINS 'KR 1'", want="items"),
            TrackerQuery("two", "[System.Tags] CONTAINS 'KR 2'", want="items", field="Effort"),
            TrackerQuery("two bv", "[System.Tags] CONTAINS 'KR 2'", want="items",
                         field="Business Value"),
        ]
    )  # fmt: skip

    one, two, two_bv = (answered(answers[name]) for name in ("one", "two", "two bv"))
    assert [m.key for m in one.matches or ()] == [str(i) for i in range(1, 80)]
    assert {m.value for m in two.matches or ()} == {3.0}  # every item's Effort
    assert [m.value for m in two_bv.matches or ()] == [float(i) for i in range(60, 120)]
    batches = [body for _, body in sent(ado_mock, "workitemsbatch")]
    assert [len(b["ids"]) for b in batches] == [119]  # 119 distinct ids, one batch
    assert batches[0]["fields"] == [
        "System.Id",
        "System.WorkItemType",
        "System.State",
        "Microsoft.VSTS.Common.BusinessValue",
        "Microsoft.VSTS.Scheduling.Effort",
    ]
    assert ado.stats.by_endpoint[WIQL] == 2  # one per text, whatever the fields


def answered(answer: QueryAnswer | QueryRefused) -> QueryAnswer:
    assert isinstance(answer, QueryAnswer), answer
    return answer
