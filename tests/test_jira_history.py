"""Status history from Jira changelogs against mocked HTTP (responses): the mapping of
changelog entries, request shapes checked against the spec, paging guards and request counts."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import responses

from connectors.base import ConnectorError
from connectors.jira_history import StatusCategories, former_keys, raw_status_changes
from spm_sync.core.domain import StatusCategory
from spm_sync.core.history import StatusChange
from tests.jira_fixtures import (
    CLOUD,
    DC,
    body,
    calls_to,
    connector,
    raw_issue,
    register_preamble,
    settings,
    spec_errors,
)

SEARCH = f"{CLOUD}/rest/api/3/search/jql"
CHANGELOGS = f"{CLOUD}/rest/api/3/changelog/bulkfetch"
STATUSES = f"{CLOUD}/rest/api/3/status"
DC_SEARCH = f"{DC}/rest/api/2/search"
NAME = "acme-jira"


@pytest.fixture
def rsps() -> Iterable[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


def change(
    changelog_id: str,
    created: Any,
    before: str | None,
    after: str | None,
    *,
    to_id: str | None = "3",
    field: str = "status",
) -> dict[str, Any]:
    item: dict[str, Any] = {"field": field, "fieldtype": "jira", "fieldId": field}
    if before is not None:
        item.update({"from": "10000", "fromString": before})
    if after is not None:
        item["toString"] = after
    if to_id is not None:
        item["to"] = to_id
    entry: dict[str, Any] = {"id": changelog_id, "items": [item]}
    if created is not None:
        entry["created"] = created
    return entry


def at(day: int, hour: int = 9) -> datetime:
    return datetime(2024, 4, day, hour, tzinfo=UTC)


# -- mapping ---------------------------------------------------------------------------------
def test_status_items_become_changes_in_time_order_with_aware_utc_times() -> None:
    histories = [
        change("3", "2024-04-03T11:00:00.000+0200", "In Progress", "Done", to_id="10001"),
        change("1", "2024-04-01T09:00:00.000+0000", "To Do", "In Progress"),
        change("2", "2024-04-02T09:00:00.000+0000", None, None, field="summary"),
    ]

    changes, unusable = raw_status_changes("PAY-1", histories)

    assert [(c.at, c.from_status, c.to_status, c.to_id) for c in changes] == [
        (at(1), "To Do", "In Progress", "3"),
        (at(3), "In Progress", "Done", "10001"),
    ]
    assert all(c.at.tzinfo is UTC for c in changes)
    assert unusable == 0


def test_entries_missing_a_time_or_a_new_status_are_skipped_and_counted() -> None:
    histories = [
        change("1", None, "To Do", "In Progress"),
        change("2", "yesterday", "To Do", "In Progress"),
        change("3", "2024-04-02T09:00:00.000+0000", "To Do", None),
        change("4", "2024-04-03T09:00:00.000+0000", None, "Done", to_id=None),
        {"id": "5", "created": "2024-04-04T09:00:00.000+0000"},  # no items at all
        "not a changelog",
    ]

    changes, unusable = raw_status_changes("PAY-1", histories)

    assert [(c.from_status, c.to_status, c.to_id) for c in changes] == [(None, "Done", None)]
    assert unusable == 4


def test_epoch_times_as_the_spec_example_shows_them_are_read() -> None:
    changes, _ = raw_status_changes("PAY-1", [change("1", 1492070429, "To Do", "Done")])

    assert changes[0].at == datetime.fromtimestamp(1492070429, UTC)


def test_data_center_items_without_field_id_are_matched_by_field_name() -> None:
    entry = change("1", "2024-04-01T09:00:00.000+0000", "To Do", "In Progress")
    del entry["items"][0]["fieldId"]
    entry["items"][0]["field"] = "Status"

    changes, _ = raw_status_changes("PAY-1", [entry])

    assert [c.to_status for c in changes] == ["In Progress"]


def test_unknown_status_ids_map_to_no_category() -> None:
    categories = StatusCategories()
    categories.learn({"id": "3", "statusCategory": {"key": "indeterminate"}})
    categories.learn({"id": "7", "statusCategory": {"key": "in-flight"}})  # not Jira's keys
    categories.learn({"name": "no id"})
    categories.learn("not a status")

    assert categories.category("3") is StatusCategory.IN_PROGRESS
    assert categories.category("7") is None
    assert categories.category("999") is None and not categories.knows("999")
    assert categories.category(None) is None


def test_former_keys_come_from_key_items() -> None:
    moved = {
        "id": "9",
        "items": [
            {"field": "Key", "fieldtype": "jira", "fromString": "OLD-3", "toString": "PAY-9"}
        ],
    }

    assert former_keys([moved, change("1", "2024-04-01T09:00:00.000+0000", "A", "B")]) == ["OLD-3"]


# -- Cloud over mocked HTTP ------------------------------------------------------------------
def pull_cloud(rsps: responses.RequestsMock, keys: list[str]) -> Any:
    """A connector that pulled `keys` (PAY-n with id 10000 + n) incrementally."""
    register_preamble(rsps)
    pulled = [raw_issue(key, 10000 + int(key.split("-")[1])) for key in keys]
    rsps.post(SEARCH, json={"issues": pulled, "isLast": True})
    jira = connector()
    items = list(jira.pull(at(1)))
    assert [item.key for item in items] == keys
    return jira


def changelog_page(
    logs: dict[str, list[dict[str, Any]]], token: str | None = None
) -> dict[str, Any]:
    page: dict[str, Any] = {
        "issueChangeLogs": [{"issueId": i, "changeHistories": h} for i, h in logs.items()]
    }
    if token is not None:
        page["nextPageToken"] = token
    return page


def test_cloud_reads_changelogs_by_id_with_a_spec_shaped_body_and_files_them_by_key(
    rsps: responses.RequestsMock,
) -> None:
    jira = pull_cloud(rsps, ["PAY-1", "PAY-2"])
    rsps.post(
        CHANGELOGS,
        json=changelog_page(
            {
                "10001": [change("11", "2024-04-01T09:00:00.000+0000", "To Do", "In Progress")],
                "10002": [change("21", "2024-04-02T09:00:00.000+0000", "To Do", "In Progress")],
            },
            token="next",
        ),
    )
    rsps.post(
        CHANGELOGS,
        json=changelog_page(
            {
                "10001": [
                    change(
                        "12", "2024-04-03T09:00:00.000+0000", "In Progress", "Review", to_id="10004"
                    )
                ]
            }
        ),
    )
    rsps.get(
        STATUSES,
        json=[{"id": "10004", "name": "Review", "statusCategory": {"key": "indeterminate"}}],
    )

    changes = list(jira.pull_history(["PAY-1", "PAY-2"], None))

    assert changes == [
        StatusChange((NAME, "PAY-1"), at(1), "To Do", "In Progress", StatusCategory.IN_PROGRESS),
        StatusChange((NAME, "PAY-2"), at(2), "To Do", "In Progress", StatusCategory.IN_PROGRESS),
        StatusChange((NAME, "PAY-1"), at(3), "In Progress", "Review", StatusCategory.IN_PROGRESS),
    ]
    sent = [body(call) for call in calls_to(rsps, "POST", "/rest/api/3/changelog/bulkfetch")]
    assert sent[0] == {
        "issueIdsOrKeys": ["10001", "10002"],
        "fieldIds": ["status"],
        "maxResults": 10000,
    }
    assert sent[1] == {**sent[0], "nextPageToken": "next"}
    for request in sent:
        assert spec_errors("platform", "BulkChangelogRequestBean", request) == []
    # "In Progress" was the pulled issues' status; "Review" needed the status list, once.
    assert jira.stats.by_endpoint["GET /rest/api/3/status"] == 1
    # What the next run starts from: the categories learned, so it needs no status list.
    assert json.loads(jira.history_cursor or "")["status_categories"]["10004"] == "In Progress"


def test_a_run_that_pulled_nothing_asks_nothing(rsps: responses.RequestsMock) -> None:
    jira = connector()

    assert list(jira.pull_history([], None)) == []
    assert jira.stats.requests == 0


def test_the_status_list_is_asked_once_per_run_even_when_it_lacks_an_id(
    rsps: responses.RequestsMock,
) -> None:
    jira = pull_cloud(rsps, ["PAY-1"])
    gone = [
        change(str(n), f"2024-04-0{n}T09:00:00.000+0000", "To Do", "Gone", to_id="99")
        for n in (1, 2)
    ]
    rsps.post(CHANGELOGS, json=changelog_page({"10001": gone}))
    rsps.post(CHANGELOGS, json=changelog_page({"10001": gone}))
    rsps.get(STATUSES, json=[])

    first = list(jira.pull_history(["PAY-1"], None))
    second = list(jira.pull_history(["PAY-1"], None))

    assert [c.to_category for c in first + second] == [None] * 4
    assert len(calls_to(rsps, "GET", "/rest/api/3/status")) == 1


def test_a_key_the_pull_did_not_yield_costs_one_issue_lookup(
    rsps: responses.RequestsMock,
) -> None:
    register_preamble(rsps)
    rsps.post(
        f"{CLOUD}/rest/api/3/issue/bulkfetch",
        json={"issues": [raw_issue("PAY-5", 10005)], "issueErrors": []},
    )
    rsps.post(
        CHANGELOGS,
        json=changelog_page({"10005": [change("1", "2024-04-01T09:00:00.000+0000", "A", "B")]}),
    )
    jira = connector()

    changes = list(jira.pull_history(["PAY-5", "PAY-404"], None))

    assert [c.item for c in changes] == [(NAME, "PAY-5")]
    lookup = body(calls_to(rsps, "POST", "/rest/api/3/issue/bulkfetch")[0])
    assert lookup == {"issueIdsOrKeys": ["PAY-5", "PAY-404"], "fields": ["status"]}
    assert body(calls_to(rsps, "POST", "/rest/api/3/changelog/bulkfetch")[0])["issueIdsOrKeys"] == [
        "10005"
    ]


def test_a_token_that_comes_back_fails_the_history_with_a_connector_error(
    rsps: responses.RequestsMock,
) -> None:
    jira = pull_cloud(rsps, ["PAY-1"])
    counter = iter(range(1, 10**6))

    def same_entries_fresh_token(
        request: requests.PreparedRequest,
    ) -> tuple[int, dict[str, str], str]:
        entry = change("1", "2024-04-01T09:00:00.000+0000", "To Do", "In Progress")
        page = changelog_page({"10001": [entry]}, token=f"t{next(counter)}")
        return 200, {}, json.dumps(page)

    rsps.add_callback(responses.POST, CHANGELOGS, callback=same_entries_fresh_token)

    with pytest.raises(ConnectorError, match="stopping instead of reading pages without end"):
        list(jira.pull_history(["PAY-1"], None))
    assert len(calls_to(rsps, "POST", "/rest/api/3/changelog/bulkfetch")) == 2


def test_a_repeated_token_is_refused(rsps: responses.RequestsMock) -> None:
    jira = pull_cloud(rsps, ["PAY-1"])
    for n in (1, 2):
        entry = change(str(n), f"2024-04-0{n}T09:00:00.000+0000", "To Do", "In Progress")
        rsps.post(CHANGELOGS, json=changelog_page({"10001": [entry]}, token="same"))

    with pytest.raises(ConnectorError, match="same changelog nextPageToken twice"):
        list(jira.pull_history(["PAY-1"], None))


def test_an_error_answer_is_a_connector_error(rsps: responses.RequestsMock) -> None:
    jira = pull_cloud(rsps, ["PAY-1"])
    rsps.post(CHANGELOGS, status=400, json={"errorMessages": ["Too many issues"], "errors": {}})

    with pytest.raises(ConnectorError, match="read changelogs: Jira rejected the request"):
        list(jira.pull_history(["PAY-1"], None))


# -- Data Center over mocked HTTP ------------------------------------------------------------
def dc_issue(key: str, issue_id: int, histories: list[dict[str, Any]]) -> dict[str, Any]:
    status = {"id": "3", "name": "In Progress", "statusCategory": {"key": "indeterminate"}}
    return {
        "id": str(issue_id),
        "key": key,
        "fields": {"status": status},
        "changelog": {
            "startAt": 0,
            "maxResults": len(histories),
            "total": len(histories),
            "histories": histories,
        },
    }


def test_data_center_searches_the_keys_with_the_changelog_expanded(
    rsps: responses.RequestsMock,
) -> None:
    register_preamble(rsps, flavour="datacenter", base=DC)
    newest_first = [
        change("2", "2024-04-02T09:00:00.000+0000", "In Progress", "Done", to_id="10001"),
        change("1", "2024-04-01T09:00:00.000+0000", "To Do", "In Progress"),
    ]
    moved = {
        "id": "3",
        "created": "2024-04-01T08:00:00.000+0000",
        "items": [
            {"field": "Key", "fieldtype": "jira", "fromString": "OLD-1", "toString": "PAY-1"}
        ],
    }
    rsps.post(
        DC_SEARCH,
        json={
            "startAt": 0,
            "maxResults": 2,
            "total": 1,
            "issues": [dc_issue("PAY-1", 10001, [*newest_first, moved])],
        },
    )
    rsps.get(
        f"{DC}/rest/api/2/status",
        json=[{"id": "10001", "name": "Done", "statusCategory": {"key": "done"}}],
    )
    jira = connector(settings(url=DC, deployment="datacenter"))

    changes = list(jira.pull_history(["PAY-1", "PAY-404"], None))

    assert [(c.item, c.at, c.to_status, c.to_category) for c in changes] == [
        ((NAME, "PAY-1"), at(1), "In Progress", StatusCategory.IN_PROGRESS),
        ((NAME, "PAY-1"), at(2), "Done", StatusCategory.DONE),
    ]
    sent = body(calls_to(rsps, "POST", "/rest/api/2/search")[0])
    assert sent == {
        "jql": 'key in ("PAY-1", "PAY-404") ORDER BY key ASC',
        "startAt": 0,
        "maxResults": 2,
        "fields": ["status"],
        "expand": ["changelog"],
        "validateQuery": "warn",
    }
    assert spec_errors("platform", "SearchRequestBean", sent) == []
    assert jira.former_keys == {"PAY-1": ["OLD-1"]}
    assert jira.stats.requests == 4  # serverInfo, field, one search, one status list


def test_data_center_reports_a_truncated_changelog(rsps: responses.RequestsMock) -> None:
    register_preamble(rsps, flavour="datacenter", base=DC)
    issue = dc_issue("PAY-1", 10001, [change("1", "2024-04-01T09:00:00.000+0000", "A", "B")])
    issue["changelog"]["total"] = 250
    rsps.post(DC_SEARCH, json={"startAt": 0, "maxResults": 1, "total": 1, "issues": [issue]})
    jira = connector(settings(url=DC, deployment="datacenter"))

    assert len(list(jira.pull_history(["PAY-1"], None))) == 1
    assert any("only part of the changelog of 1 issue(s) (PAY-1)" in w for w in jira.warnings)


def test_data_center_claiming_more_than_it_returns_stops_with_an_error(
    rsps: responses.RequestsMock,
) -> None:
    register_preamble(rsps, flavour="datacenter", base=DC)
    issue = dc_issue("PAY-1", 10001, [])
    rsps.post(DC_SEARCH, json={"startAt": 0, "maxResults": 1, "total": 5, "issues": [issue]})
    rsps.post(DC_SEARCH, json={"startAt": 0, "maxResults": 1, "total": 5, "issues": []})
    jira = connector(settings(url=DC, deployment="datacenter"))

    with pytest.raises(ConnectorError, match="without end"):
        list(jira.pull_history(["PAY-1", "PAY-2"], None))
    second = body(calls_to(rsps, "POST", "/rest/api/2/search")[1])
    assert second["jql"] == 'key in ("PAY-2") ORDER BY key ASC'


def test_changes_keep_the_order_jira_recorded_them_even_when_the_clock_disagrees() -> None:
    histories = [
        change("30", "2024-04-01T08:00:00.000+0000", "In Progress", "Done"),  # clock went back
        change("10", "2024-04-01T09:00:00.000+0000", "To Do", "In Progress"),
    ]

    changes, _ = raw_status_changes("PAY-1", histories)

    assert [c.to_status for c in changes] == ["In Progress", "Done"]
