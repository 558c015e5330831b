"""Azure DevOps write-back in `$batch` requests: 200 items a request, each item with its own
revision test and its own status, retries of the whole batch, and servers without the route."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import responses

from spm_sync.core.domain import ConnectionPlan, PlannedWrite, WriteField, WriteResult, WriteStatus
from tests.azure_devops_fixtures import (
    FakeAzureDevOps,
    FakeSleep,
    _json,
    error_body,
    make_connector,
    make_settings,
    validate_calls,
    work_item,
)

BATCH = "PATCH /contoso/_apis/wit/$batch"
UPDATE = "PATCH /contoso/Portfolio/_apis/wit/workitems/{id}"
REREAD = "POST /contoso/Portfolio/_apis/wit/workitemsbatch"


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps
        validate_calls(rsps.calls)


def rank_writes(ids: range) -> tuple[PlannedWrite, ...]:
    return tuple(PlannedWrite("ado", str(n), WriteField.RANK, 10.0, n + 0.5, "3") for n in ids)


def push(connector: Any, writes: tuple[PlannedWrite, ...]) -> dict[str, WriteResult]:
    return {r.write.item_key: r for r in connector.push(ConnectionPlan("ado", writes))}


def test_450_items_take_three_batch_requests_and_no_single_patch(
    mock: responses.RequestsMock,
) -> None:
    fake = FakeAzureDevOps(mock, {n: work_item(n) for n in range(1, 451)})
    connector = make_connector()

    results = push(connector, rank_writes(range(1, 451)))

    assert {r.status for r in results.values()} == {WriteStatus.WRITTEN}
    assert {r.new_revision for r in results.values()} == {"4"}
    assert sorted(len(batch) for batch in fake.batch_updates) == [50, 200, 200]
    assert connector.stats.by_endpoint[BATCH] == 3
    assert UPDATE not in connector.stats.by_endpoint
    assert fake.items[450]["fields"]["Microsoft.VSTS.Common.StackRank"] == 450.5
    # Each sub-request is the guarded PATCH the item would get alone.
    first = fake.batch_updates[0][0]
    assert first["body"][0] == {"op": "test", "path": "/rev", "value": 3}
    assert "suppressNotifications=true" in first["uri"]


def test_a_throttled_batch_is_retried_after_retry_after(mock: responses.RequestsMock) -> None:
    fake = FakeAzureDevOps(mock, {n: work_item(n) for n in range(1, 6)})
    fake.fail("$batch", 429, {"Retry-After": "3"})
    fake.fail("$batch", 503, {"Retry-After": "1"})
    sleep = FakeSleep()
    connector = make_connector(
        make_settings(retry={"max_attempts": 3, "base_delay_seconds": 0.01}), sleep=sleep
    )

    results = push(connector, rank_writes(range(1, 6)))

    assert {r.status for r in results.values()} == {WriteStatus.WRITTEN}
    assert connector.stats.by_endpoint[BATCH] == 3 and connector.stats.retries == 2
    assert any(3.0 <= wait <= 3.5 for wait in sleep.waits)
    assert len(fake.applied_writes) == 5  # the refused attempts wrote nothing


def test_a_batch_refused_after_every_retry_fails_its_writes_with_the_reason(
    mock: responses.RequestsMock,
) -> None:
    fake = FakeAzureDevOps(mock, {n: work_item(n) for n in range(1, 4)})
    fake.fail("$batch", 503, {"Retry-After": "1"}, times=5)

    results = push(make_connector(), rank_writes(range(1, 4)))

    assert {r.status for r in results.values()} == {WriteStatus.FAILED}
    assert all("TF400733" in (r.error or "") for r in results.values())
    assert fake.applied_writes == []


def test_a_lost_batch_answer_is_retried_and_recognised_as_our_own_writes(
    mock: responses.RequestsMock,
) -> None:
    """The connection drops after the service applied the batch: the retry's revision tests
    all fail, one batch read shows the items hold our values, nothing is written twice."""
    fake = FakeAzureDevOps(mock, {n: work_item(n) for n in range(1, 4)})
    fake.reset_after_write.add(2)
    connector = make_connector()

    results = push(connector, rank_writes(range(1, 4)))

    assert {r.status for r in results.values()} == {WriteStatus.WRITTEN}
    assert len(fake.applied_writes) == 3
    assert connector.stats.by_endpoint[BATCH] == 2
    assert connector.stats.by_endpoint[REREAD] == 1  # the three items re-read together


def test_each_item_keeps_its_own_status_within_one_batch(mock: responses.RequestsMock) -> None:
    fake = FakeAzureDevOps(mock, {n: work_item(n) for n in range(1, 5)})
    fake.touch(2, **{"Microsoft.VSTS.Common.StackRank": 99.0})  # a human edit since planning
    rule = "TF401320: Rule Error for field Stack Rank. Error code: InvalidEmpty."
    fake.patch_hook = lambda item_id, *_: _json(400, error_body(rule)) if item_id == 3 else None
    connector = make_connector()

    results = push(connector, rank_writes(range(1, 5)))

    assert results["1"].status is results["4"].status is WriteStatus.WRITTEN
    assert results["2"].status is WriteStatus.CONFLICT
    assert "planned from revision 3, now 4" in (results["2"].error or "")
    assert (results["3"].status, results["3"].error) == (WriteStatus.FAILED, rule)
    assert fake.items[2]["fields"]["Microsoft.VSTS.Common.StackRank"] == 99.0
    assert connector.stats.by_endpoint[BATCH] == 1


def test_a_server_without_batch_gets_one_patch_per_item_for_the_run(
    mock: responses.RequestsMock,
) -> None:
    fake = FakeAzureDevOps(mock, {n: work_item(n) for n in range(1, 4)})
    fake.fail("$batch", 404)
    connector = make_connector(make_settings(workers=1))

    results = push(connector, rank_writes(range(1, 4)))
    again = push(
        connector,
        tuple(PlannedWrite("ado", str(n), WriteField.RANK, n + 0.5, 1.0 * n, "4") for n in (1, 2)),
    )

    assert {r.status for r in (*results.values(), *again.values())} == {WriteStatus.WRITTEN}
    assert connector.stats.by_endpoint[BATCH] == 1  # asked once, never again this run
    assert connector.stats.by_endpoint[UPDATE] == 5
    assert len([w for w in connector.warnings if "no work item batch update" in w]) == 1
    assert len(fake.applied_writes) == 5


def test_an_answer_that_cannot_be_matched_to_the_items_fails_them_all(
    mock: responses.RequestsMock,
) -> None:
    fake = FakeAzureDevOps(mock, {n: work_item(n) for n in range(1, 4)})
    one = {"code": 200, "headers": {}, "body": json.dumps({"id": 1, "rev": 4})}
    fake.batch_hook = lambda _: _json(200, {"count": 1, "value": [one]})

    results = push(make_connector(), rank_writes(range(1, 4)))

    assert {r.status for r in results.values()} == {WriteStatus.FAILED}
    assert "holds 1 answers for 3 updates" in (results["2"].error or "")


def test_unchanged_and_invalid_writes_stay_out_of_the_batch(mock: responses.RequestsMock) -> None:
    fake = FakeAzureDevOps(mock, {n: work_item(n) for n in range(1, 4)})
    writes = (
        PlannedWrite("ado", "1", WriteField.RANK, 10.0, 10.0, "3"),
        PlannedWrite("ado", "2", WriteField.PRIORITY, "2", 9, "3"),
        *rank_writes(range(2, 4)),
    )

    results = [r for r in make_connector().push(ConnectionPlan("ado", writes))]

    statuses = {(r.write.item_key, r.write.field): r.status for r in results}
    assert statuses[("1", WriteField.RANK)] is WriteStatus.UNCHANGED
    assert statuses[("2", WriteField.PRIORITY)] is WriteStatus.FAILED
    assert statuses[("2", WriteField.RANK)] is statuses[("3", WriteField.RANK)]
    assert statuses[("3", WriteField.RANK)] is WriteStatus.WRITTEN
    ((first, second),) = fake.batch_updates
    assert [op["path"] for op in first["body"]] == [
        "/rev",
        "/fields/Microsoft.VSTS.Common.StackRank",
    ]
    assert second["uri"].startswith("/_apis/wit/workitems/3?")
