"""Write-back against mocked Jira HTTP: freshness, grouped edits, labels, notifyUsers, rank."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pytest
import requests
import responses

from connectors.jira import JiraConnector
from spm_sync.core.domain import (
    ConnectionPlan,
    PlannedWrite,
    RankMove,
    WriteField,
    WriteResult,
    WriteStatus,
    WriteValue,
)
from tests.jira_fixtures import (
    CLOUD,
    COST_ID,
    DC,
    SCORE_ID,
    body,
    calls_to,
    connector,
    raw_issue,
    register_preamble,
    settings,
    spec_errors,
)

BULK = f"{CLOUD}/rest/api/3/issue/bulkfetch"
RANK = f"{CLOUD}/rest/agile/1.0/issue/rank"
PLANNED_FROM = "2024-05-01T08:00:00.000+0000"


@pytest.fixture
def rsps() -> Iterable[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        register_preamble(mock)
        yield mock


def write(
    key: str, field: WriteField, old: WriteValue, new: WriteValue, revision: str = PLANNED_FROM
) -> PlannedWrite:
    return PlannedWrite("acme-jira", key, field, old, new, revision)


def rank_move(keys: list[str], *, after: str | None = None, before: str | None = None) -> RankMove:
    writes = tuple(write(key, WriteField.RANK, None, n, PLANNED_FROM) for n, key in enumerate(keys))
    return RankMove("acme-jira", tuple(keys), after, before, writes)


def now(key: str, updated: str = PLANNED_FROM, **fields: Any) -> dict[str, Any]:
    """The issue as the freshness check reads it."""
    number = int(key.split("-")[1])
    issue = raw_issue(key, 10000 + number, updated=updated, **fields)
    return issue


def serve_current(rsps: responses.RequestsMock, issues: list[dict[str, Any]]) -> None:
    by_key = {issue["key"]: issue for issue in issues}

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        asked = json.loads(request.body or b"{}")["issueIdsOrKeys"]
        found = [by_key[key] for key in asked if key in by_key]
        return 200, {}, json.dumps({"issues": found, "issueErrors": []})

    rsps.add_callback(responses.POST, BULK, callback=answer)


def by_key(results: Iterable[WriteResult]) -> dict[tuple[str, WriteField], WriteResult]:
    return {(r.write.item_key, r.write.field): r for r in results}


def push(jira: JiraConnector, writes: list[PlannedWrite], moves: list[RankMove] = ()) -> dict:
    return by_key(jira.push(ConnectionPlan("acme-jira", tuple(writes), tuple(moves))))


def test_fields_of_one_issue_go_in_one_edit_without_notifications(
    rsps: responses.RequestsMock,
) -> None:
    serve_current(rsps, [now("PAY-1", customfield_10034=1.0, customfield_10035=8)])
    rsps.put(f"{CLOUD}/rest/api/3/issue/PAY-1", status=204)
    writes = [
        write("PAY-1", WriteField.WSJF_SCORE, 1.0, 2.5),
        write("PAY-1", WriteField.COST_OF_DELAY, 8.0, 20.0),
        write("PAY-1", WriteField.PRIORITY, "Medium", "Highest"),
    ]

    results = push(connector(), writes)

    assert {key: r.status for key, r in results.items()} == {
        ("PAY-1", WriteField.WSJF_SCORE): WriteStatus.WRITTEN,
        ("PAY-1", WriteField.COST_OF_DELAY): WriteStatus.WRITTEN,
        ("PAY-1", WriteField.PRIORITY): WriteStatus.WRITTEN,
    }
    (edit,) = calls_to(rsps, "PUT", "/rest/api/3/issue/PAY-1")
    assert edit.request.url.endswith("?notifyUsers=false")
    assert body(edit) == {"fields": {SCORE_ID: 2.5, COST_ID: 20.0, "priority": {"name": "Highest"}}}
    assert spec_errors("platform", "IssueUpdateDetails", body(edit)) == []
    (check,) = calls_to(rsps, "POST", "/rest/api/3/issue/bulkfetch")
    assert body(check) == {
        "issueIdsOrKeys": ["PAY-1"],
        "fields": sorted([COST_ID, SCORE_ID, "priority", "updated"]),
    }


def test_an_item_edited_since_the_plan_is_a_conflict_and_not_written(
    rsps: responses.RequestsMock,
) -> None:
    serve_current(
        rsps,
        [now("PAY-1", updated="2024-05-01T09:13:00.000+0000"), now("PAY-2", customfield_10034=1)],
    )
    rsps.put(f"{CLOUD}/rest/api/3/issue/PAY-2", status=204)
    writes = [
        write("PAY-1", WriteField.WSJF_SCORE, 1.0, 3.0),
        write("PAY-1", WriteField.PRIORITY, "Medium", "High"),
        write("PAY-2", WriteField.WSJF_SCORE, 1.0, 3.0),
    ]

    results = push(connector(), writes)

    assert results[("PAY-1", WriteField.WSJF_SCORE)].status is WriteStatus.CONFLICT
    assert results[("PAY-1", WriteField.PRIORITY)].status is WriteStatus.CONFLICT
    assert "2024-05-01T09:13:00.000+0000" in (results[("PAY-1", WriteField.PRIORITY)].error or "")
    assert results[("PAY-2", WriteField.WSJF_SCORE)].status is WriteStatus.WRITTEN
    assert calls_to(rsps, "PUT", "/rest/api/3/issue/PAY-1") == []


def test_the_same_instant_in_another_format_is_no_conflict(rsps: responses.RequestsMock) -> None:
    serve_current(rsps, [now("PAY-1", updated="2024-05-01T10:00:00.000+0200")])
    rsps.put(f"{CLOUD}/rest/api/3/issue/PAY-1", status=204)

    results = push(connector(), [write("PAY-1", WriteField.WSJF_SCORE, None, 4.0)])

    assert results[("PAY-1", WriteField.WSJF_SCORE)].status is WriteStatus.WRITTEN


def test_values_already_present_are_unchanged_without_a_request(
    rsps: responses.RequestsMock,
) -> None:
    serve_current(
        rsps,
        [now("PAY-1", customfield_10034="2.5", priority={"name": "High"}, labels=["kr-1", "x"])],
    )
    writes = [
        write("PAY-1", WriteField.WSJF_SCORE, 1.0, 2.5),
        write("PAY-1", WriteField.PRIORITY, "Low", "High"),
        write("PAY-1", WriteField.LABELS, ("x",), ("kr-1", "x")),
    ]

    results = push(connector(), writes)

    assert {r.status for r in results.values()} == {WriteStatus.UNCHANGED}
    assert [call.request.method for call in rsps.calls].count("PUT") == 0


def test_labels_are_added_and_removed_never_set(rsps: responses.RequestsMock) -> None:
    # Planned from {a, b}; a human added "human" since; we want {b, c}.
    serve_current(rsps, [now("PAY-1", labels=["a", "b", "human"])])
    rsps.put(f"{CLOUD}/rest/api/3/issue/PAY-1", status=204)

    results = push(connector(), [write("PAY-1", WriteField.LABELS, ("a", "b"), ("b", "c"))])

    assert results[("PAY-1", WriteField.LABELS)].status is WriteStatus.WRITTEN
    (edit,) = calls_to(rsps, "PUT", "/rest/api/3/issue/PAY-1")
    assert body(edit) == {"update": {"labels": [{"add": "c"}, {"remove": "a"}]}}
    assert spec_errors("platform", "IssueUpdateDetails", body(edit)) == []


def test_a_refused_edit_fails_that_issue_only_with_jiras_message(
    rsps: responses.RequestsMock,
) -> None:
    serve_current(rsps, [now("PAY-1"), now("PAY-2"), now("PAY-3")])
    rsps.put(
        f"{CLOUD}/rest/api/3/issue/PAY-1",
        status=400,
        json={
            "errorMessages": [],
            "errors": {SCORE_ID: "Field cannot be set. It is not on the appropriate screen."},
        },
    )
    rsps.put(
        f"{CLOUD}/rest/api/3/issue/PAY-2",
        status=409,
        json={"errorMessages": ["Conflicting update"]},
    )
    rsps.put(f"{CLOUD}/rest/api/3/issue/PAY-3", status=204)
    writes = [write(key, WriteField.WSJF_SCORE, None, 5.0) for key in ("PAY-1", "PAY-2", "PAY-3")]

    results = push(connector(), writes)

    failed = results[("PAY-1", WriteField.WSJF_SCORE)]
    assert failed.status is WriteStatus.FAILED
    assert (
        failed.error
        == f"HTTP 400: {SCORE_ID}: Field cannot be set. It is not on the appropriate screen."
    )
    assert results[("PAY-2", WriteField.WSJF_SCORE)].status is WriteStatus.CONFLICT
    assert results[("PAY-3", WriteField.WSJF_SCORE)].status is WriteStatus.WRITTEN


def test_an_item_that_no_longer_exists_fails_its_writes(rsps: responses.RequestsMock) -> None:
    serve_current(rsps, [])

    results = push(connector(), [write("PAY-404", WriteField.WSJF_SCORE, None, 5.0)])

    assert results[("PAY-404", WriteField.WSJF_SCORE)].status is WriteStatus.FAILED
    assert "does not exist or is not visible" in (
        results[("PAY-404", WriteField.WSJF_SCORE)].error or ""
    )


@pytest.mark.parametrize("status", [400, 403])
def test_notify_users_refusal_is_retried_once_with_notifications_and_remembered(
    rsps: responses.RequestsMock, status: int
) -> None:
    serve_current(rsps, [now("PAY-1"), now("PAY-2")])
    refusal = {
        "errorMessages": [
            "To discard the user notification either admin or project admin permissions are "
            "required."
        ]
    }
    quiet = responses.matchers.query_param_matcher({"notifyUsers": "false"})
    loud = responses.matchers.query_param_matcher({})
    rsps.put(f"{CLOUD}/rest/api/3/issue/PAY-1", status=status, json=refusal, match=[quiet])
    rsps.put(f"{CLOUD}/rest/api/3/issue/PAY-1", status=204, match=[loud])
    rsps.put(f"{CLOUD}/rest/api/3/issue/PAY-2", status=204, match=[loud])
    jira = connector(settings(workers=1))

    first = push(jira, [write("PAY-1", WriteField.WSJF_SCORE, None, 5.0)])
    second = push(jira, [write("PAY-2", WriteField.WSJF_SCORE, None, 5.0)])

    assert first[("PAY-1", WriteField.WSJF_SCORE)].status is WriteStatus.WRITTEN
    assert second[("PAY-2", WriteField.WSJF_SCORE)].status is WriteStatus.WRITTEN
    urls = [call.request.url for call in rsps.calls if call.request.method == "PUT"]
    assert urls == [
        f"{CLOUD}/rest/api/3/issue/PAY-1?notifyUsers=false",
        f"{CLOUD}/rest/api/3/issue/PAY-1",
        f"{CLOUD}/rest/api/3/issue/PAY-2",
    ]
    assert jira.warnings == [
        "Jira refused notifyUsers=false (needs admin permission); edits are sent with "
        "notifications for the rest of this run"
    ]


def test_rank_moves_go_50_at_a_time_and_207_fails_only_the_named_issues(
    rsps: responses.RequestsMock,
) -> None:
    keys = [f"PAY-{n}" for n in range(10, 130)]
    serve_current(rsps, [now(key) for key in keys])
    rsps.put(RANK, status=204)
    partial = {
        "entries": [
            {"issueId": 10000 + n, "issueKey": f"PAY-{n}", "status": 200} for n in range(60, 110)
        ]
    }
    partial["entries"][-1] = {
        "issueId": 10109,
        "issueKey": "PAY-109",
        "status": 503,
        "errors": [
            "JIRA Agile cannot execute the rank operation at this time. Please try again later."
        ],
    }
    rsps.put(RANK, status=207, json=partial)
    rsps.put(RANK, status=204)

    results = push(connector(), [], [rank_move(keys, after="PAY-1")])

    calls = [body(call) for call in calls_to(rsps, "PUT", "/rest/agile/1.0/issue/rank")]
    assert [len(call["issues"]) for call in calls] == [50, 50, 20]
    assert [call["issues"] for call in calls] == [keys[:50], keys[50:100], keys[100:]]
    # Each chunk goes after the last issue the previous one placed; PAY-109 was not placed.
    assert [call["rankAfterIssue"] for call in calls] == ["PAY-1", "PAY-59", "PAY-108"]
    assert {call["rankCustomFieldId"] for call in calls} == {10019}
    for call in calls:
        assert spec_errors("agile", "IssueRankRequestBean", call) == []
    failed = results[("PAY-109", WriteField.RANK)]
    assert failed.status is WriteStatus.FAILED
    assert failed.error == (
        "HTTP 503: JIRA Agile cannot execute the rank operation at this time. "
        "Please try again later."
    )
    written = [r for r in results.values() if r.status is WriteStatus.WRITTEN]
    assert len(written) == 119


def test_conflicted_keys_are_left_out_of_the_rank_call(rsps: responses.RequestsMock) -> None:
    serve_current(
        rsps,
        [now("PAY-2"), now("PAY-3", updated="2024-05-01T11:00:00.000+0000"), now("PAY-4")],
    )
    rsps.put(RANK, status=204)

    results = push(connector(), [], [rank_move(["PAY-2", "PAY-3", "PAY-4"], before="PAY-1")])

    (call,) = [body(c) for c in calls_to(rsps, "PUT", "/rest/agile/1.0/issue/rank")]
    assert call == {
        "issues": ["PAY-2", "PAY-4"],
        "rankBeforeIssue": "PAY-1",
        "rankCustomFieldId": 10019,
    }
    assert results[("PAY-3", WriteField.RANK)].status is WriteStatus.CONFLICT
    assert results[("PAY-2", WriteField.RANK)].status is WriteStatus.WRITTEN
    assert results[("PAY-4", WriteField.RANK)].status is WriteStatus.WRITTEN


def test_one_freshness_check_covers_field_writes_and_rank_moves(
    rsps: responses.RequestsMock,
) -> None:
    serve_current(rsps, [now("PAY-2"), now("PAY-3")])
    rsps.put(f"{CLOUD}/rest/api/3/issue/PAY-2", status=204)
    rsps.put(RANK, status=204)

    results = push(
        connector(),
        [write("PAY-2", WriteField.WSJF_SCORE, None, 9.0)],
        [rank_move(["PAY-2", "PAY-3"], after="PAY-1")],
    )

    assert {r.status for r in results.values()} == {WriteStatus.WRITTEN}
    assert len(calls_to(rsps, "POST", "/rest/api/3/issue/bulkfetch")) == 1
    assert rsps.calls[-1].request.url == RANK  # rank after the field edits


def test_a_rank_write_outside_a_move_is_refused(rsps: responses.RequestsMock) -> None:
    serve_current(rsps, [now("PAY-2")])

    results = push(connector(), [write("PAY-2", WriteField.RANK, 3, 1)])

    assert results[("PAY-2", WriteField.RANK)].status is WriteStatus.FAILED


def test_datacenter_freshness_is_a_key_search_that_drops_missing_keys() -> None:
    with responses.RequestsMock() as rsps:
        register_preamble(rsps, flavour="datacenter", base=DC)
        missing = {
            "errorMessages": ["An issue with key 'PAY-9' does not exist for field 'key'."],
            "errors": {},
        }
        rsps.post(f"{DC}/rest/api/2/search", status=400, json=missing)
        rsps.post(
            f"{DC}/rest/api/2/search",
            json={"startAt": 0, "maxResults": 1, "total": 1, "issues": [now("PAY-1")]},
        )
        rsps.put(f"{DC}/rest/api/2/issue/PAY-1", status=204)
        jira = connector(settings(url=DC))

        results = push(
            jira,
            [
                write("PAY-1", WriteField.WSJF_SCORE, None, 2.0),
                write("PAY-9", WriteField.WSJF_SCORE, None, 2.0),
            ],
        )

        searches = [body(call) for call in calls_to(rsps, "POST", "/rest/api/2/search")]
        assert [s["jql"] for s in searches] == ['key in ("PAY-1", "PAY-9")', 'key in ("PAY-1")']
        assert searches[1]["fields"] == [SCORE_ID, "updated"]
        assert results[("PAY-1", WriteField.WSJF_SCORE)].status is WriteStatus.WRITTEN
        assert results[("PAY-9", WriteField.WSJF_SCORE)].status is WriteStatus.FAILED
        (edit,) = calls_to(rsps, "PUT", "/rest/api/2/issue/PAY-1")
        assert edit.request.url.endswith("?notifyUsers=false")
