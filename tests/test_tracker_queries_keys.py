"""Saved queries that want only the keys of their matches, against mocked HTTP (responses): the
request each tracker gets (Jira: `key` alone, Cloud pages of 5,000, Data Center of 1,000;
Azure DevOps: the WIQL ids, nothing read), what rides on what, and the texts that read given
keys."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses

from connectors.base import QueryAnswer, QueryMatch, QueryRefused, TrackerQuery
from connectors.tracker_queries import KEYS_PER_QUERY, AskedQuery, keys_queries, plan
from tests.azure_devops_fixtures import (
    ORG_URL,
    FakeAzureDevOps,
    make_connector,
    validate_calls,
    work_item,
)
from tests.jira_fixtures import (
    CLOUD,
    DC,
    body,
    calls_to,
    connector,
    raw_issue,
    register_preamble,
    settings,
)

SEARCH = f"{CLOUD}/rest/api/3/search/jql"
DC_SEARCH = f"{DC}/rest/api/2/search"
DONE = {"id": "5", "name": "Done", "statusCategory": {"id": 3, "key": "done", "name": "Done"}}
WIQL = "POST /contoso/Portfolio/_apis/wit/wiql"
BATCH = "POST /contoso/Portfolio/_apis/wit/workitemsbatch"


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def key_hit(key: str, issue_id: int) -> dict[str, Any]:
    """A search hit when only `key` is asked for: id, self and key, no field values."""
    return {"id": str(issue_id), "self": f"{CLOUD}/rest/api/3/issue/{issue_id}", "key": key}


# -- the plan ----------------------------------------------------------------------------------
def test_a_richer_query_of_the_same_text_answers_keys_and_counts() -> None:
    queries = [
        TrackerQuery("count", "labels = kr-1"),
        TrackerQuery("keys", "labels = kr-1", want="keys", field="ignored for keys"),
        TrackerQuery("items", "labels = kr-2", want="items"),
        TrackerQuery("keys 2", "labels = kr-2", want="keys"),
        TrackerQuery("count 3", "labels = kr-3"),
    ]

    distinct, answered_by = plan(queries)

    assert distinct == [
        AskedQuery("labels = kr-1", "keys", None),
        AskedQuery("labels = kr-2", "items", None),
        AskedQuery("labels = kr-3", "count", None),
    ]
    assert answered_by["count"] == answered_by["keys"]
    assert answered_by["keys 2"] == answered_by["items"]


def test_keys_queries_name_each_key_once_in_texts_of_at_most_a_thousand() -> None:
    assert keys_queries("jql", ["PAY-1", "WEB-22", "PAY-1", "not a key"]) == [
        'key in ("PAY-1", "WEB-22")'
    ]
    assert keys_queries("wiql", ["7", "12", "x7"]) == [
        "SELECT [System.Id] FROM WorkItems WHERE [System.Id] IN (7, 12)"
    ]
    many = keys_queries("wiql", [str(n) for n in range(1, KEYS_PER_QUERY + 2)])
    assert len(many) == 2 and many[1].endswith(f"IN ({KEYS_PER_QUERY + 1})")
    assert max(len(text) for text in many) < 32_000  # the WIQL length limit
    assert keys_queries("jql", []) == []


# -- Jira --------------------------------------------------------------------------------------
def test_cloud_keys_page_the_search_with_key_alone_5000_a_page(
    rsps: responses.RequestsMock,
) -> None:
    register_preamble(rsps)
    first = [key_hit("PAY-1", 10001), key_hit("PAY-2", 10002)]
    rsps.post(SEARCH, json={"issues": first, "nextPageToken": "t-1", "isLast": False})
    rsps.post(SEARCH, json={"issues": [key_hit("WEB-3", 10003)], "isLast": True})
    jira = connector()

    answers = jira.run_queries(
        [
            TrackerQuery("share", "labels = kr-1 ORDER BY rank", want="keys"),
            TrackerQuery("count", "labels = kr-1 ORDER BY rank"),
        ]
    )

    assert answers["share"] == QueryAnswer(3, keys=("PAY-1", "PAY-2", "WEB-3"))
    assert answers["count"] == QueryAnswer(3)  # read off the keys: exact, no count request
    searches = calls_to(rsps, "POST", "/rest/api/3/search/jql")
    assert [body(call) for call in searches] == [
        {"jql": "(labels = kr-1) ORDER BY key ASC", "fields": ["key"], "maxResults": 5000},
        {"jql": "(labels = kr-1) ORDER BY key ASC", "fields": ["key"], "maxResults": 5000,
         "nextPageToken": "t-1"},
    ]  # fmt: skip
    assert jira.stats.requests == 4  # serverInfo, field, 2 pages


def test_cloud_keys_ride_on_an_items_query_of_the_same_text(rsps: responses.RequestsMock) -> None:
    register_preamble(rsps)
    rsps.post(SEARCH, json={"issues": [raw_issue("PAY-1", 10001, status=DONE)], "isLast": True})
    jira = connector()

    answers = jira.run_queries(
        [
            TrackerQuery("keys", "labels = kr-1", want="keys"),
            TrackerQuery("items", "labels = kr-1", want="items"),
        ]
    )

    assert answers["keys"] == QueryAnswer(1, keys=("PAY-1",))
    assert answers["items"] == QueryAnswer(1, matches=(QueryMatch("PAY-1", True),))
    (call,) = calls_to(rsps, "POST", "/rest/api/3/search/jql")
    assert body(call)["fields"] == ["status"]


def test_datacenter_keys_are_keyset_pages_of_1000_with_key_alone(
    rsps: responses.RequestsMock,
) -> None:
    register_preamble(rsps, flavour="datacenter", base=DC)
    hits = [key_hit(f"PAY-{n}", 10000 + n) for n in (1, 2)]
    rsps.post(DC_SEARCH, json={"startAt": 0, "maxResults": 1000, "total": 2, "issues": hits})
    jira = connector(settings(url=DC, deployment="datacenter"))

    answers = jira.run_queries([TrackerQuery("share", "labels = kr-1", want="keys")])

    assert answers == {"share": QueryAnswer(2, keys=("PAY-1", "PAY-2"))}
    (call,) = calls_to(rsps, "POST", "/rest/api/2/search")
    assert body(call) == {
        "jql": "(labels = kr-1) ORDER BY key ASC",
        "startAt": 0,
        "maxResults": 1000,
        "fields": ["key"],
    }


def test_a_rejected_keys_query_is_refused_alone(rsps: responses.RequestsMock) -> None:
    register_preamble(rsps)

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        if "nonsense" in json.loads(request.body or b"{}")["jql"]:
            problem = {"errorMessages": ["Field 'nonsense' does not exist."], "errors": {}}
            return 400, {}, json.dumps(problem)
        return 200, {}, json.dumps({"issues": [key_hit("PAY-1", 10001)], "isLast": True})

    rsps.add_callback(responses.POST, SEARCH, callback=answer)

    answers = connector().run_queries(
        [
            TrackerQuery("bad", "nonsense = 1", want="keys"),
            TrackerQuery("good", "labels = kr-1", want="keys"),
        ]
    )

    refused = answers["bad"]
    assert isinstance(refused, QueryRefused) and "nonsense" in refused.reason
    assert answers["good"] == QueryAnswer(1, keys=("PAY-1",))


# -- Azure DevOps ------------------------------------------------------------------------------
class QueriedAzureDevOps(FakeAzureDevOps):
    """Answers every WIQL query with `ids`."""

    def __init__(self, mock: responses.RequestsMock, items: dict[int, Any], ids: list[int]):
        self.ids = ids
        super().__init__(mock, items)

    def _wiql(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.wiql_queries.append(json.loads(request.body)["query"])
        items = [{"id": i, "url": f"{ORG_URL}/_apis/wit/workItems/{i}"} for i in self.ids]
        result = {"queryType": "flat", "queryResultType": "workItem", "workItems": items}
        return 200, {"Content-Type": "application/json"}, json.dumps(result)


@pytest.fixture
def ado_mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
        validate_calls(mock.calls)


def test_ado_keys_are_the_wiql_ids_and_nothing_is_read(ado_mock: responses.RequestsMock) -> None:
    ids = list(range(1, 451))
    QueriedAzureDevOps(ado_mock, {i: work_item(i) for i in ids}, ids)
    ado = make_connector()

    answers = ado.run_queries(
        [
            TrackerQuery("share", "[System.Tags] CONTAINS 'KR 2'", want="keys"),
            TrackerQuery("sum", "[System.Tags] CONTAINS 'KR 3'", want="keys", field="Effort"),
        ]
    )

    assert answers["share"] == QueryAnswer(450, keys=tuple(str(i) for i in ids))
    assert answers["sum"] == QueryAnswer(450, keys=tuple(str(i) for i in ids))
    assert ado.stats.by_endpoint[WIQL] == 2
    assert ado.stats.by_endpoint[BATCH] == 0  # the ids are the keys: no read
    assert ado.stats.by_endpoint["GET /contoso/Portfolio/_apis/wit/fields"] == 0  # no field
