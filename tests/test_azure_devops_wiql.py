"""WIQL building and the result cap: unit tests of the pager, then the cap over HTTP."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
import responses

from connectors.wiql_builder import (
    IdPager,
    IdWindow,
    ResultCapExceeded,
    WiqlScope,
    build_scope_query,
    wiql_datetime,
)
from tests.azure_devops_fixtures import FakeAzureDevOps, make_connector, validate_calls, work_item


class CappedScope:
    """Ids of a scope answered like the service: by id, `$top`, refused past `cap`."""

    def __init__(self, ids: list[int], cap: int, *, honour_top: bool, page_size: int) -> None:
        self.ids = sorted(ids)
        self.cap = cap
        self.honour_top = honour_top
        self.page_size = page_size
        self.refused = 0

    def __call__(self, window: IdWindow) -> list[int]:
        found = [
            i for i in self.ids if i > window.after and (window.up_to is None or i <= window.up_to)
        ]
        if len(found) > self.cap and not (self.honour_top and self.page_size <= self.cap):
            self.refused += 1
            raise ResultCapExceeded("VS402337")
        return found[: self.page_size]


def collect(pager: IdPager) -> list[int]:
    return [item_id for page in pager.pages() for item_id in page]


def test_keyset_paging_with_top_never_meets_the_cap() -> None:
    scope = CappedScope(list(range(1, 25_001)), 20_000, honour_top=True, page_size=20_000)
    pager = IdPager(scope, 20_000)

    assert collect(pager) == list(range(1, 25_001))
    assert pager.queries == 2
    assert scope.refused == 0


def test_a_server_ignoring_top_is_split_into_id_windows() -> None:
    scope = CappedScope(list(range(1, 25_001)), 20_000, honour_top=False, page_size=20_000)
    pager = IdPager(scope, 20_000)

    assert collect(pager) == list(range(1, 25_001))
    assert scope.refused == 1
    assert pager.queries == 3  # refused open window, (0, 20000], then (20000, ∞)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sparse_and_clustered_ids_come_back_once_each(seed: int) -> None:
    chance = random.Random(seed)
    ids = set(chance.sample(range(1, 2_000_000), 900)) | set(range(500_000, 500_700))
    scope = CappedScope(sorted(ids), 100, honour_top=False, page_size=100)
    pager = IdPager(scope, 100)

    collected = collect(pager)

    assert collected == sorted(ids)
    assert pager.queries < 200


def test_a_lower_cap_than_the_page_is_split_recursively() -> None:
    scope = CappedScope(list(range(1, 1_001)), 64, honour_top=True, page_size=20_000)
    pager = IdPager(scope, 20_000)

    assert collect(pager) == list(range(1, 1_001))
    assert scope.refused > 0


def test_scope_query_text() -> None:
    scope = WiqlScope(("Epic", "User Story"), ("Portfolio\\Payments",), "[System.State] <> 'X'")
    query = build_scope_query(
        scope,
        select=("System.Title", "Effort"),
        since=datetime(2026, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))),
        window=IdWindow(100, 200),
    )
    assert query == (
        "SELECT [System.Id], [System.Title], [Effort]\n"
        "FROM WorkItems\n"
        "WHERE [System.TeamProject] = @project\n"
        "  AND [System.WorkItemType] IN ('Epic', 'User Story')\n"
        "  AND ([System.AreaPath] UNDER 'Portfolio\\Payments')\n"
        "  AND ([System.State] <> 'X')\n"
        "  AND [System.ChangedDate] >= '2026-03-01T10:00:00.000Z'\n"
        "  AND [System.Id] > 100\n"
        "  AND [System.Id] <= 200\n"
        "ORDER BY [System.Id] ASC"
    )


def test_naive_since_is_utc() -> None:
    assert wiql_datetime(datetime(2026, 1, 2, 3, 4, 5, 678900)) == "2026-01-02T03:04:05.678Z"
    assert wiql_datetime(datetime(2026, 1, 2, tzinfo=UTC)) == "2026-01-02T00:00:00.000Z"


def test_field_names_with_brackets_are_refused() -> None:
    with pytest.raises(ValueError, match="not a usable field name"):
        build_scope_query(WiqlScope(), select=("Bad]Name",))


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps
        validate_calls(rsps.calls)


@pytest.mark.parametrize("honour_top", [True, False])
def test_cap_answer_splits_and_every_item_arrives_once(
    mock: responses.RequestsMock, honour_top: bool
) -> None:
    ids = [*range(1, 90), *range(5_000, 5_031), 77_777]
    fake = FakeAzureDevOps(mock, {i: work_item(i) for i in ids}, cap=50, honour_top=honour_top)
    connector = make_connector(wiql_page_size=50)

    keys = [item.key for item in connector.pull(None)]

    assert sorted(keys, key=int) == [str(i) for i in ids]
    assert len(keys) == len(set(keys))
    requested = [i for body in fake.batch_bodies for i in body["ids"]]
    assert sorted(requested) == ids
    refused = sum(1 for c in mock.calls if c.response is not None and c.response.status_code == 400)
    assert (refused > 0) is not honour_top
    assert connector.warnings == []


def test_default_page_meets_a_lower_server_cap_and_still_gets_everything(
    mock: responses.RequestsMock,
) -> None:
    ids = list(range(1, 131))
    FakeAzureDevOps(mock, {i: work_item(i) for i in ids}, cap=40)

    keys = make_connector().scan_keys()

    assert keys == {str(i) for i in ids}
