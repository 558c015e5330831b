"""Azure DevOps status history: the revisions feed's paging, its guards and the mapping of
revisions to status changes, over real HTTP code paths (`responses` under our session)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from connectors.azure_devops_history import (
    MalformedRevision,
    Revision,
    StateChanges,
    read_revision,
)
from connectors.base import ConnectorError
from connectors.paging_guard import PagingLimitExceeded, PagingLoopError
from spm_sync.core.domain import StatusCategory
from tests.ado_spec import examples, load_example, validate_response
from tests.azure_devops_fixtures import (
    WIT,
    FakeAzureDevOps,
    error_body,
    make_connector,
    make_settings,
    validate_calls,
)

FEED_URL = f"{WIT}/reporting/workitemrevisions"
OPERATION = "Reporting Work Item Revisions_Read Reporting Revisions Get"
STATE_CHANGE_DATE = "Microsoft.VSTS.Common.StateChangeDate"


class Feed:
    """Answers the feed's requests from a list, in order (the last answer repeats)."""

    def __init__(self, mock: responses.RequestsMock, answers: list[Any]) -> None:
        self.answers = answers
        self.params: list[dict[str, str]] = []
        mock.add_callback("GET", FEED_URL, self._answer)

    def _answer(self, request: Any) -> tuple[int, dict[str, str], str]:
        query = parse_qs(urlsplit(request.url).query)
        self.params.append({name: values[-1] for name, values in query.items()})
        answer = self.answers[min(len(self.params), len(self.answers)) - 1]
        status, body = answer if isinstance(answer, tuple) else (200, answer)
        if status == 200:
            validate_response(OPERATION, body, strict=True)
        return status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(body)


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps
        validate_calls(rsps.calls)


def revision(item_id: int, rev: int, state: str, changed: str, **fields: Any) -> dict[str, Any]:
    values = {"System.WorkItemType": "Epic", "System.State": state, "System.ChangedDate": changed}
    values.update(fields)
    return {"id": item_id, "rev": rev, "fields": values}


def batch(values: list[Any], token: str | None, last: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"values": values, "isLastBatch": last}
    if token is not None:
        body["continuationToken"] = token
        body["nextLink"] = f"{FEED_URL}?continuationToken={token}&api-version=7.1-preview.2"
    return body


def example(name: str) -> dict[str, Any]:
    path = next(p for _, p in examples() if p.name == name)
    body: dict[str, Any] = load_example(path)["responses"]["200"]["body"]
    return body


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# -- the official examples ---------------------------------------------------------------------
def test_the_first_batch_example_maps_to_the_first_state_of_each_item(
    mock: responses.RequestsMock,
) -> None:
    feed = Feed(mock, [example("GET__wit_reporting_workItemRevisions.json")])
    connector = make_connector()

    changes = list(connector.pull_history(["1"], None))

    assert [(c.item, c.at, c.from_status, c.to_status, c.to_category) for c in changes] == [
        (("ado", "1"), at("2014-03-18T17:16:56.250"), None, "New", StatusCategory.TODO),
        (("ado", "2"), at("2014-03-18T17:17:06.010"), None, "New", StatusCategory.TODO),
    ]  # item 1's revision 2 changed its backlog priority, not its state
    # The first-batch example has no `continuationToken`: the token is in `nextLink`.
    assert connector.history_cursor == "3;2;1"
    assert connector.stats.requests == 1
    assert feed.params == [
        {
            "api-version": "7.1-preview.2",
            "fields": "System.WorkItemType,System.State,System.ChangedDate," + STATE_CHANGE_DATE,
        }
    ]


def test_a_later_batch_example_continues_from_its_token(mock: responses.RequestsMock) -> None:
    answer = example(
        "GET__wit_reporting_workItemRevisions_includeIdentityRef-true_watermark-794.json"
    )
    feed = Feed(mock, [answer])
    connector = make_connector(make_settings(scope={"work_item_types": ["Product Backlog Item"]}))

    changes = list(connector.pull_history([], "794"))

    # Revision 8 of item 3 is the first read of it and does not say whether it changed the
    # state (no StateChangeDate): taken as a change into Done, from an unknown state.
    assert [(c.item[1], c.from_status, c.to_status, c.to_category) for c in changes] == [
        ("3", None, "Done", StatusCategory.DONE),
        ("350", None, "New", StatusCategory.TODO),
    ]
    assert feed.params[0]["continuationToken"] == "794"
    assert feed.params[0]["types"] == "Product Backlog Item"
    assert connector.history_cursor == "813;350;1"


# -- the mapping -------------------------------------------------------------------------------
def test_state_change_date_tells_a_state_change_from_another_edit() -> None:
    changes = StateChanges("ado", lambda _type, _state: None)
    same = {STATE_CHANGE_DATE: "2026-03-01T10:00:00.5Z"}
    moved = read_revision(revision(7, 4, "Active", "2026-03-01T10:00:00.5Z", **same))
    earlier = {STATE_CHANGE_DATE: "2026-02-01T09:00:00Z"}
    edited = read_revision(revision(8, 5, "Active", "2026-03-02T10:00:00Z", **earlier))
    later = read_revision(revision(8, 6, "Closed", "2026-03-03T10:00:00.1234567Z"))

    assert changes.change_of(moved) is not None
    assert changes.change_of(edited) is None
    change = changes.change_of(later)
    assert change is not None
    assert (change.from_status, change.to_status, change.at) == (
        "Active",
        "Closed",
        datetime(2026, 3, 3, 10, 0, 0, 123456, tzinfo=UTC),
    )
    assert changes.change_of(later) is None  # the same revision again
    assert changes.change_of(edited) is None  # an older one


def test_revisions_without_a_state_change_are_skipped() -> None:
    changes = StateChanges("ado", lambda _type, _state: StatusCategory.IN_PROGRESS)
    revisions = [
        revision(5, 1, "New", "2026-01-01T00:00:00Z"),
        revision(5, 2, "New", "2026-01-02T00:00:00Z"),
        revision(5, 3, "Active", "2026-01-03T00:00:00Z"),
        revision(5, 4, "Active", "2026-01-04T00:00:00Z"),
        revision(5, 5, "Closed", "2026-01-05T00:00:00Z"),
        revision(5, 6, "Active", "2026-01-06T00:00:00Z"),
    ]
    found = [changes.change_of(read_revision(raw)) for raw in revisions]
    assert [(c.from_status, c.to_status) for c in found if c is not None] == [
        (None, "New"),
        ("New", "Active"),
        ("Active", "Closed"),
        ("Closed", "Active"),
    ]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("not an object", "not an object"),
        ({"rev": 1, "fields": {}}, "without a numeric id"),
        ({"id": 4, "fields": {"System.State": "New"}}, "without a revision number"),
        (revision(4, 1, "New", "yesterday"), "System.ChangedDate is not a date"),
        (revision(4, 1, "New", "2026-01-01T00:00:00"), "has no time zone"),
        ({"id": 4, "rev": 1, "fields": {"System.ChangedDate": "2026-01-01T00:00:00Z"}}, "missing"),
        (revision(4, 2, "New", "2026-01-01T00:00:00Z", **{STATE_CHANGE_DATE: 7}), "StateChange"),
    ],
)
def test_malformed_revisions_are_named(raw: Any, problem: str) -> None:
    with pytest.raises(MalformedRevision, match=problem):
        read_revision(raw)


def test_malformed_revisions_are_skipped_with_a_warning(mock: responses.RequestsMock) -> None:
    good = revision(2, 1, "New", "2026-01-01T00:00:00Z")
    Feed(mock, [batch([{"id": 1, "rev": 1, "fields": {}}, good], "2;2;1", True)])
    connector = make_connector()

    (change,) = connector.pull_history([], None)

    assert change.item == ("ado", "2")
    assert connector.warnings == [
        "skipped a malformed work item revision: "
        "work item 1: System.ChangedDate is missing (revision 1)"
    ]


def test_an_unknown_state_has_no_category_and_does_not_fail(
    mock: responses.RequestsMock,
) -> None:
    FakeAzureDevOps(mock, {})
    values = [
        revision(1, 1, "Limbo", "2026-01-01T00:00:00Z"),
        revision(2, 1, "Odd", "2026-01-01T00:00:00Z", **{"System.WorkItemType": "Widget"}),
        revision(3, 1, "Active", "2026-01-01T00:00:00Z"),
    ]
    Feed(mock, [batch(values, "3;3;1", True)])
    connector = make_connector()

    changes = list(connector.pull_history([], None))

    assert [(c.to_status, c.to_category) for c in changes] == [
        ("Limbo", None),
        ("Odd", None),
        ("Active", StatusCategory.IN_PROGRESS),
    ]
    # Each type with a state the system table does not know is read once, as in a pull.
    states = "GET /contoso/Portfolio/_apis/wit/workitemtypes/{type}/states"
    assert connector.stats.by_endpoint[states] == 2
    assert any("could not read the states of 'Widget'" in w for w in connector.warnings)


# -- paging and its guards ---------------------------------------------------------------------
def test_batches_are_followed_by_token_until_the_last(mock: responses.RequestsMock) -> None:
    feed = Feed(
        mock,
        [
            batch([revision(1, 1, "New", "2026-01-01T00:00:00Z")], "1;1;1", False),
            batch([revision(1, 2, "Active", "2026-01-02T00:00:00Z")], "2;1;2", False),
            batch([revision(1, 3, "Closed", "2026-01-03T00:00:00Z")], "3;1;3", True),
        ],
    )
    connector = make_connector()

    changes = list(connector.pull_history([], "0;0;0"))

    assert [(c.from_status, c.to_status) for c in changes] == [
        (None, "New"),
        ("New", "Active"),  # the state before is known across batches
        ("Active", "Closed"),
    ]
    assert [p["continuationToken"] for p in feed.params] == ["0;0;0", "1;1;1", "2;1;2"]
    assert connector.history_cursor == "3;1;3"


def test_throttled_and_unavailable_answers_are_retried(mock: responses.RequestsMock) -> None:
    blocked = error_body("TF400733: The request has been canceled: Request was blocked")
    Feed(
        mock,
        [
            (429, blocked),
            (503, blocked),
            batch([revision(1, 1, "New", "2026-01-01T00:00:00Z")], "1;1;1", True),
        ],
    )
    connector = make_connector(make_settings(retry={"max_attempts": 3, "base_delay_seconds": 0.01}))

    assert len(list(connector.pull_history([], None))) == 1
    assert connector.stats.retries == 2 and connector.stats.requests == 3


@pytest.mark.parametrize(
    ("answers", "error", "message"),
    [
        # The token never moves on.
        (
            [batch([revision(1, 1, "New", "2026-01-01T00:00:00Z")], "5;1;1", False),
             batch([revision(2, 1, "New", "2026-01-01T00:00:00Z")], "5;1;1", False)],
            PagingLoopError,
            "sent the continuation token '5;1;1' again",
        ),
        # Fresh tokens, the same revisions.
        (
            [batch([revision(1, 1, "New", "2026-01-01T00:00:00Z")], "1;1;1", False),
             batch([revision(1, 1, "New", "2026-01-01T00:00:00Z")], "2;1;1", False)],
            PagingLoopError,
            "sent none it had not sent already",
        ),
        # More follow, but from where?
        (
            [batch([revision(1, 1, "New", "2026-01-01T00:00:00Z")], None, False)],
            ConnectorError,
            "sent no continuation token",
        ),
    ],
)  # fmt: skip
def test_a_feed_that_would_not_end_fails_and_keeps_the_cursor(
    mock: responses.RequestsMock, answers: list[Any], error: type[Exception], message: str
) -> None:
    Feed(mock, answers)
    connector = make_connector()

    with pytest.raises(error, match=message):
        list(connector.pull_history([], "0;0;0"))
    assert connector.history_cursor is None
    assert connector.stats.requests == len(answers)


def test_a_feed_inventing_revisions_stops_at_the_page_budget(
    mock: responses.RequestsMock,
) -> None:
    endless = [
        batch([revision(n, 1, "New", "2026-01-01T00:00:00Z")], f"{n};{n};1", False)
        for n in range(1, 10)
    ]
    Feed(mock, endless)
    connector = make_connector(make_settings(limits={"max_pages": 4}))

    with pytest.raises(PagingLimitExceeded, match="work item revisions after 4"):
        list(connector.pull_history([], None))
    assert connector.stats.requests == 4


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ((400, error_body("VS402346: The continuation token is not valid.")), "VS402346"),
        ([], "unexpected body"),
        ({"values": {"id": 1}, "isLastBatch": True}, "not a list"),
    ],
)
def test_a_refused_or_odd_answer_is_a_connector_error(
    mock: responses.RequestsMock, answer: Any, message: str
) -> None:
    mock.add("GET", FEED_URL, json=answer[1], status=answer[0]) if isinstance(
        answer, tuple
    ) else mock.add("GET", FEED_URL, json=answer)
    connector = make_connector()

    with pytest.raises(ConnectorError, match=message):
        list(connector.pull_history([], "7;1;1"))


def test_a_process_without_state_change_date_is_asked_again_without_it(
    mock: responses.RequestsMock,
) -> None:
    refusal = error_body(f"TF51535: Cannot find field {STATE_CHANGE_DATE}.")
    feed = Feed(
        mock,
        [
            (400, refusal),
            batch([revision(1, 4, "Active", "2026-01-01T00:00:00Z")], "9;1;4", False),
            batch([], "9;1;4", True),
        ],
    )
    connector = make_connector()

    changes = list(connector.pull_history([], "8;1;3"))

    assert [(c.from_status, c.to_status) for c in changes] == [(None, "Active")]
    assert [STATE_CHANGE_DATE in p["fields"] for p in feed.params] == [True, False, False]
    assert len(connector.warnings) == 1 and STATE_CHANGE_DATE in connector.warnings[0]


def test_revision_dates_are_utc() -> None:
    parsed = read_revision(revision(1, 1, "New", "2026-01-01T02:00:00+02:00"))
    assert parsed == Revision(1, 1, "Epic", "New", datetime(2026, 1, 1, tzinfo=UTC), None)
    assert parsed.changed.tzinfo is UTC
