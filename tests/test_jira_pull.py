"""Pull and scan against mocked Jira HTTP (responses): request shapes, paging, retries, errors."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import pytest
import requests
import responses

from connectors.base import Connector, ConnectorError, UnknownFieldError
from connectors.http import endpoint_name
from connectors.jira_mapping import requested_fields
from connectors.jira_paging import KeyPaginator, PagingLoopError
from tests.jira_fixtures import (
    CLOUD,
    DC,
    ENV,
    EPIC_LINK_ID,
    NOW,
    Sleeps,
    body,
    calls_to,
    connector,
    field_catalog,
    raw_issue,
    register_preamble,
    settings,
    spec_errors,
)

SEARCH = f"{CLOUD}/rest/api/3/search/jql"
BULK = f"{CLOUD}/rest/api/3/issue/bulkfetch"
DC_SEARCH = f"{DC}/rest/api/2/search"


@pytest.fixture
def rsps() -> Iterable[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


def issues(count: int, first: int = 1) -> dict[str, dict[str, Any]]:
    return {str(10000 + n): raw_issue(f"PAY-{n}", 10000 + n) for n in range(first, first + count)}


def id_page(ids: Iterable[str], token: str | None) -> dict[str, Any]:
    page: dict[str, Any] = {"issues": [{"id": i} for i in ids], "isLast": token is None}
    if token is not None:
        page["nextPageToken"] = token
    return page


def serve_bulkfetch(
    rsps: responses.RequestsMock, by_id: dict[str, dict[str, Any]], errors: set[str] = frozenset()
) -> None:
    """Answers bulkfetch from `by_id`; ids in `errors` come back as issueErrors."""

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        asked = json.loads(request.body or b"{}")["issueIdsOrKeys"]
        found = [by_id[i] for i in asked if i in by_id and i not in errors]
        failed = [{"id": i, "errorMessage": "try again"} for i in asked if i in errors]
        return 200, {}, json.dumps({"issues": found, "issueErrors": failed})

    rsps.add_callback(responses.POST, BULK, callback=answer)


def test_cloud_full_sync_fetches_ids_then_only_the_needed_fields_in_batches_of_100(
    rsps: responses.RequestsMock,
) -> None:
    register_preamble(rsps)
    by_id = issues(250)
    ids = list(by_id)
    rsps.post(SEARCH, json=id_page(ids[:200], "token-1"))
    rsps.post(SEARCH, json=id_page(ids[200:], None))
    serve_bulkfetch(rsps, by_id)
    jira = connector()

    items = list(jira.pull(None))

    assert sorted(item.key for item in items) == sorted(i["key"] for i in by_id.values())
    searches = [body(call) for call in calls_to(rsps, "POST", "/rest/api/3/search/jql")]
    assert searches == [
        {"jql": "(project in (PAY, WEB)) ORDER BY key ASC", "fields": ["id"], "maxResults": 5000},
        {
            "jql": "(project in (PAY, WEB)) ORDER BY key ASC",
            "fields": ["id"],
            "maxResults": 5000,
            "nextPageToken": "token-1",
        },
    ]
    for search in searches:
        assert spec_errors("platform", "SearchAndReconcileRequestBean", search) == []
    fetches = [body(call) for call in calls_to(rsps, "POST", "/rest/api/3/issue/bulkfetch")]
    assert sorted(len(fetch["issueIdsOrKeys"]) for fetch in fetches) == [50, 100, 100]
    assert sorted(i for fetch in fetches for i in fetch["issueIdsOrKeys"]) == sorted(ids)
    expected_fields = requested_fields(jira._prepare().fields)
    for fetch in fetches:
        assert fetch["fields"] == expected_fields
        assert spec_errors("platform", "BulkFetchIssueRequestBean", fetch) == []
    assert jira.stats.requests == 7
    assert jira.stats.by_endpoint == {
        "GET /rest/api/2/serverInfo": 1,
        "GET /rest/api/3/field": 1,
        "POST /rest/api/3/search/jql": 2,
        "POST /rest/api/3/issue/bulkfetch": 3,
    }
    assert jira.warnings == []


def test_cloud_full_sync_streams_with_a_bounded_number_of_batches_in_flight(
    rsps: responses.RequestsMock,
) -> None:
    register_preamble(rsps)
    by_id = issues(2000)
    rsps.post(SEARCH, json=id_page(list(by_id), "more"))
    rsps.post(SEARCH, json=id_page([], None))
    serve_bulkfetch(rsps, by_id)
    jira = connector()  # 3 workers: at most 6 batches submitted before the first item

    stream = jira.pull(None)
    first = next(stream)

    assert first.key.startswith("PAY-")
    assert len(calls_to(rsps, "POST", "/rest/api/3/search/jql")) == 1
    assert len(calls_to(rsps, "POST", "/rest/api/3/issue/bulkfetch")) <= 7
    rest = list(stream)
    assert len(rest) + 1 == 2000
    assert len(calls_to(rsps, "POST", "/rest/api/3/issue/bulkfetch")) == 20


def test_issue_errors_are_asked_again_once(rsps: responses.RequestsMock) -> None:
    register_preamble(rsps)
    by_id = issues(5)
    rsps.post(SEARCH, json=id_page(list(by_id), None))
    first = {
        "issues": [by_id["10001"], by_id["10002"], by_id["10003"]],
        "issueErrors": [
            {"id": "10004", "errorMessage": "timeout"},
            {"id": "10005", "errorMessage": "timeout"},
        ],
    }
    rsps.post(BULK, json=first)
    rsps.post(BULK, json={"issues": [by_id["10004"], by_id["10005"]], "issueErrors": []})

    items = list(connector().pull(None))

    assert sorted(item.key for item in items) == ["PAY-1", "PAY-2", "PAY-3", "PAY-4", "PAY-5"]
    retry = body(calls_to(rsps, "POST", "/rest/api/3/issue/bulkfetch")[1])
    assert retry["issueIdsOrKeys"] == ["10004", "10005"]


def test_issues_jira_keeps_failing_to_return_fail_the_pull_after_the_rest(
    rsps: responses.RequestsMock,
) -> None:
    register_preamble(rsps)
    by_id = issues(3)
    rsps.post(SEARCH, json=id_page(list(by_id), None))
    serve_bulkfetch(rsps, by_id, errors={"10002"})
    seen: list[str] = []

    with pytest.raises(ConnectorError, match=r"could not return 1 issue\(s\).*10002 \(try again\)"):
        for item in connector().pull(None):
            seen.append(item.key)

    assert sorted(seen) == ["PAY-1", "PAY-3"]


def test_malformed_issue_is_skipped_with_a_warning(rsps: responses.RequestsMock) -> None:
    register_preamble(rsps)
    by_id = issues(3)
    del by_id["10002"]["fields"]["issuetype"]
    by_id["10003"]["fields"]["updated"] = "not a date"
    rsps.post(SEARCH, json=id_page(list(by_id), None))
    serve_bulkfetch(rsps, by_id)
    jira = connector()

    items = list(jira.pull(None))

    assert [item.key for item in items] == ["PAY-1"]
    assert sorted(jira.warnings) == [
        "PAY-2: skipped, the issue has no issuetype",
        "PAY-3: skipped, updated 'not a date' is not a timestamp",
    ]


def test_incremental_sync_is_one_search_with_fields_and_a_relative_window(
    rsps: responses.RequestsMock,
) -> None:
    # Jira's clock runs 2 minutes ahead of ours; the window is measured on Jira's clock.
    register_preamble(rsps)
    rsps.replace(
        responses.GET,
        f"{CLOUD}/rest/api/2/serverInfo",
        json={"deploymentType": "Cloud", "serverTime": "2024-05-02T12:02:00.000+0000"},
    )
    changed = [raw_issue("PAY-3", 10003), raw_issue("WEB-9", 20009)]
    rsps.post(SEARCH, json={"issues": changed, "isLast": True})
    jira = connector()

    items = list(jira.pull(NOW - timedelta(minutes=90, seconds=10)))

    assert [item.key for item in items] == ["PAY-3", "WEB-9"]
    (search,) = [body(call) for call in calls_to(rsps, "POST", "/rest/api/3/search/jql")]
    assert search == {
        "jql": '(project in (PAY, WEB)) AND updated >= "-94m" ORDER BY key ASC',
        "fields": requested_fields(jira._prepare().fields),
        "maxResults": 100,
    }
    assert spec_errors("platform", "SearchAndReconcileRequestBean", search) == []
    assert calls_to(rsps, "POST", "/rest/api/3/issue/bulkfetch") == []
    assert jira.stats.requests == 3


def test_no_change_incremental_sync_costs_three_requests(rsps: responses.RequestsMock) -> None:
    register_preamble(rsps)
    rsps.post(SEARCH, json={"issues": [], "isLast": True})
    jira = connector()

    assert list(jira.pull(NOW - timedelta(hours=25))) == []
    assert jira.stats.requests == 3


def test_server_info_and_fields_are_read_once_per_run(rsps: responses.RequestsMock) -> None:
    register_preamble(rsps)
    rsps.post(SEARCH, json={"issues": [], "isLast": True})
    jira = connector()

    list(jira.pull(NOW - timedelta(hours=1)))
    list(jira.pull(NOW - timedelta(hours=1)))
    jira.scan_keys()

    assert jira.stats.by_endpoint["GET /rest/api/2/serverInfo"] == 1
    assert jira.stats.by_endpoint["GET /rest/api/3/field"] == 1


def test_a_repeated_page_token_stops_the_scan(rsps: responses.RequestsMock) -> None:
    register_preamble(rsps)
    rsps.post(SEARCH, json=id_page(["10001"], "same"))
    rsps.post(SEARCH, json=id_page(["10002"], "same"))
    serve_bulkfetch(rsps, issues(2))

    with pytest.raises(PagingLoopError, match="same nextPageToken twice"):
        list(connector().pull(None))
    assert len(calls_to(rsps, "POST", "/rest/api/3/search/jql")) == 2


def test_scan_keys_asks_for_keys_only_5000_a_page(rsps: responses.RequestsMock) -> None:
    register_preamble(rsps)
    rsps.post(SEARCH, json={"issues": [{"id": "1", "key": "PAY-1"}], "nextPageToken": "t"})
    rsps.post(SEARCH, json={"issues": [{"id": "2", "key": "WEB-2"}], "isLast": True})
    jira = connector()

    assert jira.scan_keys() == {"PAY-1", "WEB-2"}
    for search in (body(c) for c in calls_to(rsps, "POST", "/rest/api/3/search/jql")):
        assert search["fields"] == ["key"] and search["maxResults"] == 5000
        assert spec_errors("platform", "SearchAndReconcileRequestBean", search) == []


def test_429_is_retried_after_the_retry_after_it_names(rsps: responses.RequestsMock) -> None:
    register_preamble(rsps)
    limits = {
        "Retry-After": "7",
        "X-RateLimit-Remaining": "0",
        "RateLimit-Reason": "jira-burst-based",
    }
    rsps.post(SEARCH, status=429, json={"message": "Rate limit exceeded"}, headers=limits)
    rsps.post(SEARCH, json={"issues": [], "isLast": True}, headers={"X-RateLimit-Remaining": "99"})
    sleeps = Sleeps()
    jira = connector(sleep=sleeps)

    assert list(jira.pull(NOW - timedelta(minutes=5))) == []

    assert len(sleeps) == 1 and 7 <= sleeps[0] <= 7.7
    assert (jira.stats.retries, jira.stats.throttled) == (1, 1)
    assert jira.stats.by_endpoint["POST /rest/api/3/search/jql"] == 2
    assert jira.stats.rate_limit["RateLimit-Reason"] == "jira-burst-based"
    assert jira.stats.rate_limit["X-RateLimit-Remaining"] == "99"


def test_503_without_retry_after_backs_off_exponentially(rsps: responses.RequestsMock) -> None:
    register_preamble(rsps)
    rsps.post(SEARCH, status=503, body="Service Unavailable")
    rsps.post(SEARCH, status=503, body="Service Unavailable")
    rsps.post(SEARCH, json={"issues": [], "isLast": True})
    sleeps = Sleeps()
    jira = connector(sleep=sleeps)

    list(jira.pull(NOW - timedelta(minutes=5)))

    assert len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0
    assert jira.stats.retries == 2


def test_throttling_beyond_every_retry_is_a_clear_error(rsps: responses.RequestsMock) -> None:
    register_preamble(rsps)
    rsps.post(
        SEARCH, status=429, json={"message": "Rate limit exceeded"}, headers={"Retry-After": "1"}
    )

    jira = connector()

    with pytest.raises(ConnectorError, match="kept answering 429 after every retry"):
        list(jira.pull(NOW - timedelta(minutes=5)))
    # Only the policy retries (max_attempts=4); the library's own retries are off.
    assert jira.stats.by_endpoint["POST /rest/api/3/search/jql"] == 4


def test_no_answer_at_all_is_a_clear_error_naming_the_call(rsps: responses.RequestsMock) -> None:
    register_preamble(rsps)
    rsps.post(SEARCH, body=requests.ConnectionError("connection reset by peer"))
    with pytest.raises(ConnectorError) as unreachable:
        list(connector().pull(NOW - timedelta(minutes=5)))
    assert str(unreachable.value) == (
        f"cannot reach Jira at {CLOUD} (POST /rest/api/3/search/jql): connection reset by peer"
    )

    rsps.replace("POST", SEARCH, status=429, headers={"Retry-After": "3600"})
    with pytest.raises(ConnectorError) as throttled:
        list(connector().pull(NOW - timedelta(minutes=5)))
    assert str(throttled.value) == (
        "POST /rest/api/3/search/jql: Jira is throttling: 429 with Retry-After 3600s, more than "
        "the 30s this run may wait"
    )


def dc_page(total: int, *keys: str, **fields: Any) -> dict[str, Any]:
    found = [raw_issue(key, 100 + n, **fields) for n, key in enumerate(keys)]
    return {"startAt": 0, "maxResults": 2, "total": total, "issues": found}


def dc_jqls(rsps: responses.RequestsMock) -> list[str]:
    return [body(call)["jql"] for call in calls_to(rsps, "POST", "/rest/api/2/search")]


def test_datacenter_pages_by_key_with_total_and_reads_epic_link(
    rsps: responses.RequestsMock,
) -> None:
    register_preamble(rsps, flavour="datacenter", base=DC)
    epic_link = {"parent": None, EPIC_LINK_ID: "PAY-1"}
    rsps.post(DC_SEARCH, json=dc_page(5, "PAY-1", "PAY-2", **epic_link))
    rsps.post(DC_SEARCH, json=dc_page(3, "PAY-3", "WEB-1", **epic_link))
    rsps.post(DC_SEARCH, json=dc_page(1, "WEB-2", **epic_link))
    jira = connector(settings(url=DC, auth={"method": "bearer", "token_env": "JIRA_TOKEN"}))

    items = list(jira.pull(None))

    assert [item.key for item in items] == ["PAY-1", "PAY-2", "PAY-3", "WEB-1", "WEB-2"]
    assert items[1].parent_key == "PAY-1"
    assert dc_jqls(rsps) == [
        "(project in (PAY, WEB)) ORDER BY key ASC",
        '(project in (PAY, WEB)) AND ((project = "PAY" AND key > "PAY-2") '
        'OR project not in ("PAY")) ORDER BY key ASC',
        '(project in (PAY, WEB)) AND ((project = "WEB" AND key > "WEB-1") '
        'OR project not in ("PAY", "WEB")) ORDER BY key ASC',
    ]
    searches = [body(call) for call in calls_to(rsps, "POST", "/rest/api/2/search")]
    assert {s["startAt"] for s in searches} == {0}
    assert searches[0]["maxResults"] == 1000
    assert EPIC_LINK_ID in searches[0]["fields"]
    assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {ENV['JIRA_TOKEN']}"


def test_datacenter_incremental_window_goes_into_every_page(rsps: responses.RequestsMock) -> None:
    register_preamble(rsps, flavour="datacenter", base=DC)
    rsps.post(DC_SEARCH, json=dc_page(3, "PAY-1", "PAY-2"))
    rsps.post(DC_SEARCH, json=dc_page(1, "PAY-7"))
    jira = connector(settings(url=DC))

    assert len(list(jira.pull(NOW - timedelta(minutes=30)))) == 3
    assert dc_jqls(rsps) == [
        '(project in (PAY, WEB)) AND updated >= "-31m" ORDER BY key ASC',
        '(project in (PAY, WEB)) AND updated >= "-31m" AND ((project = "PAY" AND key > "PAY-2") '
        'OR project not in ("PAY")) ORDER BY key ASC',
    ]


def test_datacenter_steps_back_when_the_last_key_was_deleted(
    rsps: responses.RequestsMock,
) -> None:
    register_preamble(rsps, flavour="datacenter", base=DC)
    rsps.post(DC_SEARCH, json=dc_page(4, "PAY-1", "PAY-2"))
    gone = {"errorMessages": ["An issue with key 'PAY-2' does not exist for field 'key'."]}
    rsps.post(DC_SEARCH, status=400, json=gone)
    rsps.post(DC_SEARCH, json=dc_page(2, "PAY-3", "PAY-4"))
    jira = connector(settings(url=DC))

    assert [item.key for item in jira.pull(None)] == ["PAY-1", "PAY-2", "PAY-3", "PAY-4"]
    assert 'key > "PAY-1"' in dc_jqls(rsps)[2]


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (("PAY-2", "PAY-1"), r"ascending key order \(PAY-1 after PAY-2\)"),
        (("PAY-1", "WEB-1", "PAY-2"), "grouped by project"),
    ],
)
def test_datacenter_answer_out_of_key_order_stops_the_scan(
    rsps: responses.RequestsMock, keys: tuple[str, ...], message: str
) -> None:
    register_preamble(rsps, flavour="datacenter", base=DC)
    rsps.post(DC_SEARCH, json=dc_page(9, *keys))

    with pytest.raises(PagingLoopError, match=message):
        list(connector(settings(url=DC)).pull(None))


def test_datacenter_deployment_against_cloud_explains_the_410(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{CLOUD}/rest/api/2/serverInfo", json={"deploymentType": "Cloud"})
    rsps.get(f"{CLOUD}/rest/api/2/field", json=field_catalog())
    gone = {
        "errorMessages": [
            "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API."
        ]
    }
    rsps.post(f"{CLOUD}/rest/api/2/search", status=410, json=gone)
    jira = connector(settings(deployment="datacenter"))

    with pytest.raises(ConnectorError, match=r"410 Gone .*set `deployment: cloud`"):
        list(jira.pull(None))
    assert jira.warnings[0] == (
        "deployment is configured as datacenter but Jira reports deploymentType 'Cloud'; "
        "using datacenter as configured"
    )


def test_bad_jql_is_reported_with_jiras_words(rsps: responses.RequestsMock) -> None:
    register_preamble(rsps)
    rsps.post(
        SEARCH,
        status=400,
        json={"errorMessages": ["Field 'projekt' does not exist."], "errors": {}},
    )

    with pytest.raises(
        ConnectorError, match=r"rejected the request: Field 'projekt' does not exist\."
    ):
        list(connector().pull(None))


def test_rejected_credentials_name_no_secret(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{CLOUD}/rest/api/2/serverInfo", status=401, body="")

    with pytest.raises(ConnectorError) as raised:
        list(connector().pull(None))
    assert "HTTP 401" in str(raised.value)
    assert ENV["JIRA_TOKEN"] not in str(raised.value)


def test_unknown_field_fails_the_pull_before_any_search(rsps: responses.RequestsMock) -> None:
    register_preamble(rsps)
    names = {
        "business_value": "Busines Value",
        "time_criticality": "Time Criticality",
        "risk_reduction": "Risk Reduction | Opportunity Enablement",
        "job_size": "Job Size",
    }

    with pytest.raises(UnknownFieldError, match="close matches: Business Value"):
        list(connector(settings(wsjf_fields=names)).pull(None))
    assert calls_to(rsps, "POST", "/rest/api/3/search/jql") == []


def test_missing_secret_names_the_variable() -> None:
    with pytest.raises(ConnectorError, match="environment variable JIRA_TOKEN is not set"):
        type(connector())(settings(), environ={"JIRA_USER": "bot"})


def test_repr_and_protocol() -> None:
    jira = connector()
    assert isinstance(jira, Connector)
    assert ENV["JIRA_TOKEN"] not in repr(jira) and ENV["JIRA_TOKEN"] not in str(vars(jira))
    assert (
        repr(jira)
        == "JiraConnector(name='acme-jira', url='https://acme.atlassian.net', deployment='auto')"
    )


@pytest.mark.parametrize(
    ("method", "url", "name"),
    [
        ("PUT", f"{CLOUD}/rest/api/3/issue/PAY-12", "PUT /rest/api/3/issue/{id}"),
        ("PUT", f"{DC}/rest/api/2/issue/10001?notifyUsers=false", "PUT /rest/api/2/issue/{id}"),
        ("PUT", f"{CLOUD}/rest/agile/1.0/issue/rank", "PUT /rest/agile/1.0/issue/rank"),
    ],
)
def test_endpoint_names_keep_the_rest_version(method: str, url: str, name: str) -> None:
    request = requests.Request(method, url).prepare()
    assert endpoint_name(request) == name


def test_key_paginator_finishes_every_project_before_the_last_one_of_a_page() -> None:
    paginator = KeyPaginator()
    assert paginator.restriction() is None
    page = {"issues": [{"key": k} for k in ("PAY-5", "PAY-9", "QA-1", "WEB-1", "WEB-4")]}
    paginator.advance({**page, "total": 9})

    assert paginator.finished_projects == ["PAY", "QA"]
    assert paginator.restriction() == (
        '((project = "WEB" AND key > "WEB-4") OR project not in ("PAY", "QA", "WEB"))'
    )
    assert paginator.drop_anchor() and 'key > "WEB-1"' in (paginator.restriction() or "")
    assert not paginator.drop_anchor()

    paginator.advance({"issues": [{"key": "XY-1"}], "total": 1})
    assert paginator.finished_projects == ["PAY", "QA", "WEB"]
    assert not paginator.has_more()
