"""Azure DevOps status history against the sandbox over HTTP on 127.0.0.1.

The connector reads the sandbox's reporting revisions feed, whose revisions are the generator's
seeded state histories (`connectors.sandbox.ado_histories`) plus every change made while the
sandbox runs; the expected changes are computed from the seeds, so the feed, its paging and the
mapping are checked end to end.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from connectors.base import ConnectorError
from connectors.paging_guard import PagingLimitExceeded, PagingLoopError
from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.portfolio import SeedItem
from connectors.sandbox.server import Faults
from spm_sync.core.domain import StatusCategory
from spm_sync.core.history import StatusChange
from tests.ado_spec import check_request, validate_response
from tests.azure_devops_fixtures import FakeSleep
from tests.sandbox_ado_support import BASE, AdoSession, seed_item
from tests.test_azure_devops_integration import connector_for, seed_items

pytestmark = pytest.mark.integration

FEED = "GET /sandbox/Portfolio/_apis/wit/reporting/workitemrevisions"
GET_OPERATION = "Reporting Work Item Revisions_Read Reporting Revisions Get"
POST_OPERATION = "Reporting Work Item Revisions_Read Reporting Revisions Post"
STATE_CHANGE = "Microsoft.VSTS.Common.StateChangeDate"
BATCH = 250
Move = tuple[str, datetime, str | None, str]


@pytest.fixture(scope="module")
def seeds() -> list[SeedItem]:
    return seed_items(400, seed=21)


@pytest.fixture
def sandbox(seeds: list[SeedItem]) -> Iterator[AzureDevOpsSandbox]:
    with AzureDevOpsSandbox(seeds) as running:
        running.revision_batch_size = BATCH
        yield running


def moves(changes: list[StatusChange]) -> list[Move]:
    return [(c.item[1], c.at, c.from_status, c.to_status) for c in changes]


def seeded_moves(seeds: list[SeedItem]) -> list[Move]:
    """Every state each seed entered, with the state before it (None for the first)."""
    expected: list[Move] = []
    for seed in seeds:
        before: str | None = None
        for at, state in seed.status_history:
            expected.append((seed.key, at.astimezone(UTC), before, state))
            before = state
    return expected


def by_item(found: list[Move]) -> list[Move]:
    return sorted(found, key=lambda move: (int(move[0]), move[1]))


def full_history(sandbox: AzureDevOpsSandbox) -> tuple[list[StatusChange], str | None]:
    connector = connector_for(sandbox)
    return list(connector.pull_history([], None)), connector.history_cursor


# -- the first run -----------------------------------------------------------------------------
def test_first_run_reads_every_state_change_in_one_request_per_batch(
    sandbox: AzureDevOpsSandbox, seeds: list[SeedItem]
) -> None:
    connector = connector_for(sandbox)
    assert connector.history_cursor is None

    changes = list(connector.pull_history(["ignored"], None))

    revisions = len(sandbox.store.revisions)
    assert connector.stats.by_endpoint == {FEED: math.ceil(revisions / BATCH)}
    assert connector.stats.requests == 5  # 1,205 revisions; no discovery for the feed
    assert by_item(moves(changes)) == by_item(seeded_moves(seeds))
    # Edits that changed something else are revisions too, and are no status change.
    assert len(changes) < revisions
    assert all(change.item[0] == "ado" and change.at.tzinfo is UTC for change in changes)
    categories = {change.to_status: change.to_category for change in changes}
    assert categories == {
        "New": StatusCategory.TODO,
        "Active": StatusCategory.IN_PROGRESS,
        "Resolved": StatusCategory.IN_PROGRESS,
        "Closed": StatusCategory.DONE,
    }
    last = sandbox.store.revisions.entry(revisions - 1)
    assert connector.history_cursor == f"{revisions};{last[0]};{last[1]}"
    assert connector.warnings == []


def test_reopened_items_show_each_move_back(
    sandbox: AzureDevOpsSandbox, seeds: list[SeedItem]
) -> None:
    reopened = [
        seed for seed in seeds if [state for _, state in seed.status_history].count("Active") > 1
    ]
    assert len(reopened) >= 10

    changes, _ = full_history(sandbox)

    reopenings = [c for c in changes if c.to_status == "Active" and c.from_status != "New"]
    assert {c.item[1] for c in reopenings} == {seed.key for seed in reopened}
    assert {c.from_status for c in reopenings} == {"Resolved", "Closed"}


# -- later runs --------------------------------------------------------------------------------
def test_next_run_continues_from_the_cursor_with_only_new_changes(
    sandbox: AzureDevOpsSandbox, seeds: list[SeedItem]
) -> None:
    _, cursor = full_history(sandbox)
    states = {int(seed.key): seed.status for seed in seeds}
    active = next(i for i, state in states.items() if state == "Active")
    closed = next(i for i, state in states.items() if state == "Closed")
    edited = next(i for i, state in states.items() if state == "New")
    sandbox.touch(active, **{"System.State": "Resolved"})
    sandbox.touch(active, **{"System.State": "Closed"})
    sandbox.touch(closed, **{"State": "Active"})  # reopened
    sandbox.touch(edited, **{"System.Title": "Renamed, still new"})
    sandbox.touch(closed, **{"System.Title": "Reopened and renamed"})
    connector = connector_for(sandbox)

    changes = list(connector.pull_history([], cursor))

    assert connector.stats.requests == 1
    at = {i: sandbox.store.items[i] for i in (active, closed)}
    assert [(c.item[1], c.from_status, c.to_status, c.to_category) for c in changes] == [
        # The revision before the first one read belongs to the last run: its state is not
        # known here, and `StateChangeDate` says this revision changed it.
        (str(active), None, "Resolved", StatusCategory.IN_PROGRESS),
        (str(active), "Resolved", "Closed", StatusCategory.DONE),
        (str(closed), None, "Active", StatusCategory.IN_PROGRESS),
    ]
    assert changes[-1].at == _revision_date(at[closed], at[closed].rev - 1)
    assert connector.history_cursor is not None and connector.history_cursor != cursor

    idle = connector_for(sandbox)
    assert list(idle.pull_history([], connector.history_cursor)) == []
    assert idle.stats.requests == 1


def test_a_run_with_nothing_new_costs_one_request_and_keeps_the_cursor(
    sandbox: AzureDevOpsSandbox,
) -> None:
    _, cursor = full_history(sandbox)
    connector = connector_for(sandbox)

    assert list(connector.pull_history([], cursor)) == []

    assert connector.stats.by_endpoint == {FEED: 1}
    assert connector.history_cursor == cursor


def test_changes_written_through_the_connector_are_in_the_next_run(
    sandbox: AzureDevOpsSandbox,
) -> None:
    _, cursor = full_history(sandbox)
    session = AdoSession(sandbox)
    item = sandbox.work_item(1010)
    document = [
        {"op": "test", "path": "/rev", "value": item["rev"]},
        {"op": "add", "path": "/fields/System.State", "value": "Removed"},
    ]
    assert session.patch(1010, document).status_code == 200
    connector = connector_for(sandbox)

    (change,) = connector.pull_history([], cursor)

    assert (change.item, change.to_status, change.to_category) == (
        ("ado", "1010"),
        "Removed",
        StatusCategory.DONE,
    )


def test_only_the_scope_s_work_item_types_are_asked_for(
    sandbox: AzureDevOpsSandbox, seeds: list[SeedItem]
) -> None:
    sandbox.request_log = []
    connector = connector_for(sandbox, scope={"work_item_types": ["Epic", "Feature"]})

    changes = list(connector.pull_history([], None))

    wanted = [seed for seed in seeds if seed.type in ("Epic", "Feature")]
    assert by_item(moves(changes)) == by_item(seeded_moves(wanted))
    (request,) = sandbox.request_log
    assert request.param("types") == "Epic,Feature"
    assert request.param("fields") == (
        "System.WorkItemType,System.State,System.ChangedDate,Microsoft.VSTS.Common.StateChangeDate"
    )


# -- faults ------------------------------------------------------------------------------------
def test_throttled_and_unavailable_batches_are_retried(
    sandbox: AzureDevOpsSandbox, seeds: list[SeedItem]
) -> None:
    sandbox.set_faults(
        Faults(throttle_rate=0.4, unavailable_rate=0.2, seed=5, only_paths=("reporting",))
    )
    sleep = FakeSleep()
    connector = connector_for(sandbox, sleep=sleep)

    changes = list(connector.pull_history([], None))

    assert by_item(moves(changes)) == by_item(seeded_moves(seeds))
    assert connector.stats.retries > 0 and connector.stats.throttled > 0
    assert sleep.waits


def test_an_endless_feed_fails_and_keeps_the_cursor(sandbox: AzureDevOpsSandbox) -> None:
    _, cursor = full_history(sandbox)
    sandbox.set_faults(Faults(endless_pages=True))
    connector = connector_for(sandbox)

    with pytest.raises(PagingLoopError, match="stopped reading pages"):
        list(connector.pull_history([], None))
    assert connector.history_cursor is None
    assert connector.stats.requests == 2

    with pytest.raises(PagingLoopError):
        list(connector.pull_history([], cursor))  # an idle project that claims more follow


def test_the_page_budget_bounds_the_feed(sandbox: AzureDevOpsSandbox) -> None:
    sandbox.revision_batch_size = 100
    connector = connector_for(sandbox, limits={"max_pages": 3})

    with pytest.raises(PagingLimitExceeded, match=r"after 3 \(limits.max_pages\)") as raised:
        list(connector.pull_history([], None))
    assert isinstance(raised.value, ConnectorError)  # the connection's reason, not a crash
    assert connector.history_cursor is None
    assert connector.stats.requests == 3


# -- the sandbox's answers, checked against the spec --------------------------------------------
def test_requests_and_answers_follow_the_spec(sandbox: AzureDevOpsSandbox) -> None:
    sandbox.request_log = []
    full_history(sandbox)
    for request in sandbox.request_log:
        query = urlencode({name: values[-1] for name, values in request.query.items()})
        url = f"{sandbox.url}{request.path}?{query}"
        assert check_request(request.method, url, dict(request.headers)) == GET_OPERATION

    session = AdoSession(sandbox, api_version="7.1-preview.2")
    path = "Portfolio/_apis/wit/reporting/workitemrevisions"
    first = session.request("GET", path, params={"$maxPageSize": 5}).json()
    validate_response(GET_OPERATION, first, strict=True)
    assert len(first["values"]) == 5 and first["isLastBatch"] is False
    assert {"System.Id", "System.State", "System.CreatedBy"} <= set(first["values"][0]["fields"])
    assert isinstance(first["values"][0]["fields"]["System.CreatedBy"], str)
    following = session.http.get(first["nextLink"], timeout=30).json()
    validate_response(GET_OPERATION, following, strict=True)
    assert len(following["values"]) == 5
    assert following["values"][0] != first["values"][0]

    body = {"fields": ["System.State"], "types": ["Epic"], "includeIdentityRef": True}
    url = session.url(f"{path}?api-version=7.1-preview.2")
    assert check_request("POST", url, {"Content-Type": "application/json"}, body) == POST_OPERATION
    posted = session.request("POST", path, json=body).json()
    validate_response(POST_OPERATION, posted, strict=True)
    assert posted["isLastBatch"] is True and posted["values"]
    assert all(set(value["fields"]) == {"System.State"} for value in posted["values"])


def test_the_feed_refuses_what_the_service_refuses(sandbox: AzureDevOpsSandbox) -> None:
    session = AdoSession(sandbox)
    path = "Portfolio/_apis/wit/reporting/workitemrevisions"
    unknown = session.request("GET", path, params={"fields": "System.State,Custom.Nope"})
    assert unknown.status_code == 400 and "TF51535" in unknown.json()["message"]
    both = session.request(
        "GET", path, params={"continuationToken": "5;1;1", "startDateTime": "2026-01-01T00:00:00Z"}
    )
    assert both.status_code == 400
    assert session.request("GET", path, params={"continuationToken": "x"}).status_code == 400


def test_the_library_finds_the_feed_but_drops_its_answer(sandbox: AzureDevOpsSandbox) -> None:
    """Why the connector reads the feed on its own session: azure-devops 7.1.0b4 declares
    `ReportingWorkItemRevisionsBatch` with an empty attribute map, so every batch it returns is
    empty, whatever the service sent."""
    from azure.devops.connection import Connection
    from msrest.authentication import BasicAuthentication

    sandbox.request_log = []
    connection = Connection(
        base_url=sandbox.organization_url, creds=BasicAuthentication("", sandbox.pat)
    )
    client = connection.clients_v7_1.get_work_item_tracking_client()
    batch = client.read_reporting_revisions_get(
        "Portfolio", fields=["System.State"], max_page_size=10
    )
    assert (
        sandbox.request_log[-1].path == "/sandbox/Portfolio/_apis/wit/reporting/workItemRevisions"
    )
    assert (batch.values, batch.continuation_token, batch.is_last_batch) == (None, None, None)


def _revision_date(item: Any, rev: int) -> datetime:
    fields = item.revision(rev)
    assert fields is not None
    return fields["System.ChangedDate"].replace(
        microsecond=fields["System.ChangedDate"].microsecond // 1000 * 1000
    )


# -- seeded histories --------------------------------------------------------------------------
def test_generated_histories_are_repeatable_and_fit_their_items(seeds: list[SeedItem]) -> None:
    again = seed_items(400, seed=21)
    assert [seed.status_history for seed in again] == [seed.status_history for seed in seeds]
    edited_later = 0
    for seed in seeds:
        times = [when for when, _ in seed.status_history]
        assert (
            times[0] == seed.created and times == sorted(set(times)) and times[-1] <= seed.updated
        )
        assert seed.status_history[-1][1] == seed.status
        edited_later += times[-1] < seed.updated
    assert 0.3 < edited_later / len(seeds) < 0.7


def test_a_hand_made_history_is_served_as_revisions() -> None:
    history = [
        (BASE - timedelta(days=10), "New"),
        (BASE - timedelta(days=5), "Active"),
        (BASE - timedelta(days=2), "Resolved"),
        (BASE - timedelta(days=1), "Active"),
    ]
    seed = seed_item(7, created=BASE - timedelta(days=10), status_history=history)
    with AzureDevOpsSandbox([seed]) as sandbox:
        current = sandbox.work_item(7)
        assert current["rev"] == 5  # four states, then an edit at `updated`
        assert current["fields"][STATE_CHANGE] == "2026-11-19T10:00:00Z"
        session = AdoSession(sandbox)
        then = session.batch({"ids": [7], "asOf": "2026-11-17T10:00:00Z"}).json()["value"][0]
        assert (then["rev"], then["fields"]["System.State"]) == (2, "Active")

        changes = list(connector_for(sandbox).pull_history([], None))

    assert [(c.from_status, c.to_status, c.at) for c in changes] == [
        (before, state, when)
        for before, (when, state) in zip([None, "New", "Active", "Resolved"], history, strict=True)
    ]


def test_a_history_that_ends_elsewhere_is_refused() -> None:
    seed = seed_item(7, status_history=[(BASE - timedelta(days=30), "New")])
    with pytest.raises(ValueError, match="ends in 'New', not in 'Active'"):
        AzureDevOpsSandbox([seed])
