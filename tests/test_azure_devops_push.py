"""Write-back to Azure DevOps: guarded JSON Patch per item (many items in one `$batch`),
conflicts, fallbacks, failures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import responses

from connectors.azure_devops_push import RANK_MOVES_UNSUPPORTED
from spm_sync.core.domain import (
    ConnectionPlan,
    PlannedWrite,
    RankMove,
    WriteField,
    WriteResult,
    WriteStatus,
)
from tests.azure_devops_fixtures import (
    ORG_URL,
    FakeAzureDevOps,
    _json,
    error_body,
    make_connector,
    make_settings,
    validate_calls,
    work_item,
)


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps
        validate_calls(rsps.calls)


def write(key: str, field: WriteField, old: Any, new: Any, revision: str = "3") -> PlannedWrite:
    return PlannedWrite("ado", key, field, old, new, revision)


def push(connector: Any, *writes: PlannedWrite, moves: tuple[RankMove, ...] = ()) -> dict:
    results: list[WriteResult] = list(connector.push(ConnectionPlan("ado", writes, moves)))
    return {(r.write.item_key, r.write.field): r for r in results}


def patches(mock: responses.RequestsMock) -> list[tuple[str, list[dict[str, Any]]]]:
    """Every item update sent, alone or inside a `$batch`: (url, JSON Patch document)."""
    sent: list[tuple[str, list[dict[str, Any]]]] = []
    for call in mock.calls:
        url, body = str(call.request.url), json.loads(call.request.body or "null")
        if call.request.method != "PATCH":
            continue
        if "/_apis/wit/$batch" in url:
            sent += [(ORG_URL + sub["uri"], sub["body"]) for sub in body]
        else:
            sent.append((url, body))
    return sent


def batches(mock: responses.RequestsMock) -> list[list[dict[str, Any]]]:
    return [
        json.loads(c.request.body or "null")
        for c in mock.calls
        if "/_apis/wit/$batch" in str(c.request.url)
    ]


def test_one_guarded_patch_per_item_with_only_changed_values(mock: responses.RequestsMock) -> None:
    fake = FakeAzureDevOps(mock, {1: work_item(1), 2: work_item(2)})
    connector = make_connector()

    results = push(
        connector,
        write("1", WriteField.WSJF_SCORE, 4.0, 6.5),
        write("1", WriteField.RANK, 10.0, 5.0),
        write("1", WriteField.PRIORITY, "2", 1),
        write("1", WriteField.LABELS, ("a",), ("a", "kr-7")),
        write("2", WriteField.COST_OF_DELAY, 9.0, 9.0),
    )

    assert results[("1", WriteField.WSJF_SCORE)].status is WriteStatus.WRITTEN
    assert results[("1", WriteField.RANK)].new_revision == "4"
    assert results[("2", WriteField.COST_OF_DELAY)].status is WriteStatus.UNCHANGED
    ((url, document),) = patches(mock)
    assert "suppressNotifications=true" in url and "api-version=7.1" in url
    assert document == [
        {"op": "test", "path": "/rev", "value": 3},
        {"op": "add", "path": "/fields/Custom.WSJFScore", "value": 6.5},
        {"op": "add", "path": "/fields/Microsoft.VSTS.Common.StackRank", "value": 5.0},
        {"op": "add", "path": "/fields/Microsoft.VSTS.Common.Priority", "value": 1},
        {"op": "add", "path": "/fields/System.Tags", "value": "a; kr-7"},
    ]
    assert fake.items[1]["fields"]["System.Tags"] == "a; kr-7"


def test_push_alone_resolves_fields_through_the_catalog(mock: responses.RequestsMock) -> None:
    FakeAzureDevOps(mock, {1: work_item(1)})
    connector = make_connector()

    push(connector, write("1", WriteField.RANK, 10.0, 1.5))

    assert connector.stats.by_endpoint["GET /contoso/Portfolio/_apis/wit/fields"] == 1
    assert connector.stats.by_endpoint["PATCH /contoso/Portfolio/_apis/wit/workitems/{id}"] == 1


def test_a_human_edit_since_planning_is_a_conflict(mock: responses.RequestsMock) -> None:
    fake = FakeAzureDevOps(mock, {1: work_item(1), 2: work_item(2)})
    fake.touch(1, **{"Microsoft.VSTS.Common.StackRank": 99.0})
    connector = make_connector()

    results = push(
        connector,
        write("1", WriteField.RANK, 10.0, 1.0),
        write("2", WriteField.RANK, 20.0, 2.0),
    )

    conflict = results[("1", WriteField.RANK)]
    assert conflict.status is WriteStatus.CONFLICT
    assert "revision 3, now 4" in (conflict.error or "")
    assert "TF26071" in (conflict.error or "")
    assert fake.items[1]["fields"]["Microsoft.VSTS.Common.StackRank"] == 99.0
    assert results[("2", WriteField.RANK)].status is WriteStatus.WRITTEN


def test_a_400_tf_answer_to_the_revision_test_is_a_conflict_too(
    mock: responses.RequestsMock,
) -> None:
    fake = FakeAzureDevOps(mock, {1: work_item(1)})
    message = "TF401289: The test operation on path /rev failed: expected 3, found 5."
    fake.patch_hook = lambda *_: _json(400, error_body(message))

    results = push(make_connector(), write("1", WriteField.RANK, 10.0, 1.0))

    assert results[("1", WriteField.RANK)].status is WriteStatus.CONFLICT


def test_a_write_whose_answer_was_lost_is_not_written_twice(mock: responses.RequestsMock) -> None:
    fake = FakeAzureDevOps(mock, {1: work_item(1)})
    fake.reset_after_write.add(1)
    connector = make_connector()

    results = push(
        connector,
        write("1", WriteField.RANK, 10.0, 1.0),
        write("1", WriteField.LABELS, (), ("kr-1", "kr-2")),
    )

    assert {r.status for r in results.values()} == {WriteStatus.WRITTEN}
    assert results[("1", WriteField.RANK)].new_revision == "4"
    assert len(fake.applied_writes) == 1
    assert connector.stats.retries == 1
    assert connector.stats.by_endpoint["POST /contoso/Portfolio/_apis/wit/workitemsbatch"] == 1


def test_refused_suppress_notifications_falls_back_once_per_run(
    mock: responses.RequestsMock,
) -> None:
    fake = FakeAzureDevOps(mock, {1: work_item(1), 2: work_item(2)})

    def refuse_suppression(_id: int, _doc: Any, params: dict[str, list[str]]) -> Any:
        if "suppressNotifications" in params:
            return _json(403, error_body("TF400813: not authorized to suppress notifications"))
        return None

    fake.patch_hook = refuse_suppression
    connector = make_connector(make_settings(workers=1))

    results = push(
        connector,
        write("1", WriteField.RANK, 10.0, 1.0),
        write("2", WriteField.RANK, 20.0, 2.0),
    )

    assert {r.status for r in results.values()} == {WriteStatus.WRITTEN}
    # One batch with the flag (both refused), one without; the flag stays off for the run.
    urls = [url for url, _ in patches(mock)]
    assert ["suppressNotifications" in url for url in urls] == [True, True, False, False]
    assert len(batches(mock)) == 2
    assert len([w for w in connector.warnings if "without notifications" in w]) == 1
    push(connector, write("1", WriteField.RANK, 1.0, 5.0, revision="4"))
    assert "suppressNotifications" not in patches(mock)[-1][0]


def test_per_item_failures_keep_the_service_message_and_others_go_on(
    mock: responses.RequestsMock,
) -> None:
    fake = FakeAzureDevOps(mock, {1: work_item(1), 2: work_item(2)})
    message = "TF401320: Rule Error for field Stack Rank. Error code: InvalidEmpty."
    fake.patch_hook = lambda item_id, *_: _json(400, error_body(message)) if item_id == 1 else None

    results = push(
        make_connector(),
        write("1", WriteField.RANK, 10.0, 1.0),
        write("2", WriteField.RANK, 20.0, 2.0),
    )

    assert results[("1", WriteField.RANK)].status is WriteStatus.FAILED
    assert results[("1", WriteField.RANK)].error == message
    assert results[("2", WriteField.RANK)].status is WriteStatus.WRITTEN


def test_an_error_body_of_another_shape_still_fails_only_its_write(
    mock: responses.RequestsMock,
) -> None:
    """A proxy or an older server can answer `{"value": [...]}`: the write fails with the
    answer's text, it does not end the push."""
    fake = FakeAzureDevOps(mock, {1: work_item(1), 2: work_item(2)})
    odd = {"count": 1, "value": ["request refused"]}
    fake.patch_hook = lambda item_id, *_: _json(400, odd) if item_id == 1 else None

    results = push(
        make_connector(),
        write("1", WriteField.RANK, 10.0, 1.0),
        write("2", WriteField.RANK, 20.0, 2.0),
    )

    assert results[("1", WriteField.RANK)].status is WriteStatus.FAILED
    assert results[("1", WriteField.RANK)].error == json.dumps(odd)
    assert results[("2", WriteField.RANK)].status is WriteStatus.WRITTEN


def test_invalid_values_fail_alone(mock: responses.RequestsMock) -> None:
    fake = FakeAzureDevOps(mock, {1: work_item(1)})
    settings = make_settings(wsjf_fields={"risk_reduction": "Custom.RiskReduction"})

    results = push(
        make_connector(settings),
        write("1", WriteField.PRIORITY, "2", 7),
        write("1", WriteField.WSJF_SCORE, None, 3.0),
        write("1", WriteField.RANK, 10.0, 3.0),
        write("x-1", WriteField.RANK, 1.0, 2.0),
    )

    assert "integer from 1 to 4" in (results[("1", WriteField.PRIORITY)].error or "")
    assert "wsjf_fields.score is not configured" in (
        results[("1", WriteField.WSJF_SCORE)].error or ""
    )
    assert results[("1", WriteField.RANK)].status is WriteStatus.WRITTEN
    assert results[("x-1", WriteField.RANK)].status is WriteStatus.FAILED
    ((_, document),) = patches(mock)
    assert [op["path"] for op in document] == ["/rev", "/fields/Microsoft.VSTS.Common.StackRank"]
    assert fake.items[1]["fields"]["Microsoft.VSTS.Common.Priority"] == 2


def test_rank_moves_are_refused_with_a_clear_error(mock: responses.RequestsMock) -> None:
    FakeAzureDevOps(mock, {1: work_item(1)})
    rank_write = write("1", WriteField.RANK, 2, 1)
    move = RankMove("ado", ("1",), None, "2", (rank_write,))

    (result,) = make_connector().push(ConnectionPlan("ado", (), (move,)))

    assert result.status is WriteStatus.FAILED
    assert result.error == RANK_MOVES_UNSUPPORTED
    assert patches(mock) == []


def test_clearing_a_number_removes_the_field(mock: responses.RequestsMock) -> None:
    fake = FakeAzureDevOps(mock, {1: work_item(1, extra={"Custom.WSJFScore": 4.0})})

    results = push(make_connector(), write("1", WriteField.WSJF_SCORE, 4.0, None))

    assert results[("1", WriteField.WSJF_SCORE)].status is WriteStatus.WRITTEN
    assert patches(mock)[0][1][1] == {"op": "remove", "path": "/fields/Custom.WSJFScore"}
    assert "Custom.WSJFScore" not in fake.items[1]["fields"]


def test_a_rejected_token_on_update_fails_the_write(mock: responses.RequestsMock) -> None:
    fake = FakeAzureDevOps(mock, {1: work_item(1)})
    fake.patch_hook = lambda *_: (401, {"WWW-Authenticate": "Basic"}, "")

    results = push(make_connector(), write("1", WriteField.RANK, 10.0, 1.0))

    failed = results[("1", WriteField.RANK)]
    assert failed.status is WriteStatus.FAILED
    assert "rejected the personal access token" in (failed.error or "")
    assert "HTTP 401" in (failed.error or "")
    assert patches(mock)[0][0].count("suppressNotifications") == 1  # not retried without


def test_a_push_stopped_early_sends_no_writes_it_cannot_report(
    mock: responses.RequestsMock,
) -> None:
    """A caller that stops reading (its audit log failed) must not leave writes queued behind it:
    they would change the tracker with no record of it. Writes go 200 items a request, so what
    may be under way when the caller stops is at most one more batch, never the rest."""
    FakeAzureDevOps(mock, {n: work_item(n) for n in range(1, 651)})
    connector = make_connector(make_settings(workers=1))
    plan = ConnectionPlan(
        "ado", tuple(write(str(n), WriteField.RANK, 10.0, n + 0.5) for n in range(1, 651))
    )

    results = connector.push(plan)
    first = next(results)
    results.close()

    assert first.status is WriteStatus.WRITTEN
    assert 1 <= len(batches(mock)) <= 2  # of 4: the one reported, at most one more under way
