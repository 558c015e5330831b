"""The Azure DevOps sandbox's `$batch` (Work Item Batch Update) over HTTP, alone and under the
connector: one answer per sub-request, each run as its own PATCH; the batch as a whole only
refused when it is malformed or throttled."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from connectors.azure_devops import AzureDevOpsConnector
from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.server import Faults
from connectors.settings import AzureDevOpsSettings
from spm_sync.core.domain import ConnectionPlan, PlannedWrite, WriteField, WriteStatus
from tests.ado_spec import check_request, validate_response
from tests.azure_devops_fixtures import FakeSleep
from tests.sandbox_ado_support import BASE, AdoSession, many_items, small_portfolio

pytestmark = pytest.mark.integration

NOW = BASE + timedelta(days=1)
SCORE = "Custom.WSJFScore"
BATCH = "PATCH /sandbox/_apis/wit/$batch"


@pytest.fixture
def client() -> Iterator[AdoSession]:
    with AzureDevOpsSandbox(small_portfolio(), clock=lambda: NOW) as sandbox:
        yield AdoSession(sandbox)


def sub_request(work_item_id: int, rev: int, score: float, query: str = "api-version=7.1") -> dict:
    return {
        "method": "PATCH",
        "uri": f"/_apis/wit/workitems/{work_item_id}?{query}",
        "headers": {"Content-Type": "application/json-patch+json"},
        "body": [
            {"op": "test", "path": "/rev", "value": rev},
            {"op": "add", "path": f"/fields/{SCORE}", "value": score},
        ],
    }


def send(client: AdoSession, body: Any, method: str = "PATCH", **params: Any) -> Any:
    return client.request(
        method,
        "_apis/wit/$batch",
        data=json.dumps(body),
        headers={"Content-Type": "application/json"},
        params=params,
    )


def answers(response: Any) -> list[tuple[int, Any]]:
    """(code, parsed body) of each sub-answer, after checking the envelope's shape."""
    assert response.status_code == 200, response.text
    envelope = response.json()
    assert set(envelope) == {"count", "value"} and envelope["count"] == len(envelope["value"])
    parsed = []
    for entry in envelope["value"]:
        assert set(entry) == {"code", "headers", "body"}
        assert entry["headers"]["Content-Type"].startswith("application/json")
        assert isinstance(entry["body"], str)  # the JSON text of the PATCH's own answer
        parsed.append((entry["code"], json.loads(entry["body"])))
    return parsed


@pytest.mark.parametrize("method", ["PATCH", "POST"])
def test_each_sub_request_is_answered_as_its_own_patch(client: AdoSession, method: str) -> None:
    body = [sub_request(100, 2, 4.5), sub_request(101, 1, 9.0), sub_request(102, 2, 3.25)]
    for sub in body:  # what the connector sends is the spec's "Work Items_Update" request
        url = client.url(sub["uri"])
        assert check_request("PATCH", url, sub["headers"], sub["body"]) == "Work Items_Update"

    (first, stale, third) = answers(send(client, body, method))

    assert [first[0], stale[0], third[0]] == [200, 412, 200]
    validate_response("Work Items_Update", first[1])
    validate_response("Work Items_Update", third[1])
    assert (first[1]["id"], first[1]["rev"], first[1]["fields"][SCORE]) == (100, 3, 4.5)
    assert stale[1]["typeKey"] == "TestPatchOperationFailedException"
    assert "VS403351" in stale[1]["message"]
    # The failed test changed nothing of its item and did not stop the next one.
    assert SCORE not in client.ado.work_item(101)["fields"]
    assert sorted(w.key for w in client.ado.writes) == ["100", "102"]


def test_a_sub_request_fails_alone_for_its_own_reasons(client: AdoSession) -> None:
    body = [
        sub_request(100, 2, 1.0),
        sub_request(999_999, 1, 1.0),  # no such item
        sub_request(102, 2, 1.0, query=""),  # no api-version
        {**sub_request(103, 2, 1.0), "method": "DELETE"},
        {**sub_request(104, 2, 1.0), "headers": {"Content-Type": "application/json"}},
        sub_request(10, rev_of(client, 10), 1.0, "api-version=7.1&suppressNotifications=true"),
    ]

    codes = [code for code, _ in answers(send(client, body))]

    assert codes == [200, 404, 400, 400, 400, 200]
    assert sorted(w.key for w in client.ado.writes) == ["10", "100"]


@pytest.mark.parametrize(
    ("body", "params", "status"),
    [
        ([sub_request(100 + n % 5, 2, float(n)) for n in range(201)], {}, 400),
        ({"requests": [sub_request(100, 2, 1.0)]}, {}, 400),
        ([], {}, 400),
        ([sub_request(100, 2, 1.0)], {"api-version": ""}, 400),
    ],
)
def test_a_malformed_batch_is_refused_as_a_whole(
    client: AdoSession, body: Any, params: dict[str, str], status: int
) -> None:
    if params:
        client.api_version = None
    response = send(client, body, **params)

    assert response.status_code == status
    # The service's error body (the spec has no definition of it: `ado_protocol`).
    assert {"message", "typeKey", "typeName"} <= set(response.json())
    assert client.ado.writes == []


def rev_of(client: AdoSession, work_item_id: int) -> int:
    return int(client.ado.work_item(work_item_id)["rev"])


# -- under the connector ------------------------------------------------------------------------
def connector_for(sandbox: AzureDevOpsSandbox, sleep: FakeSleep) -> AzureDevOpsConnector:
    settings = AzureDevOpsSettings.model_validate(
        {
            "kind": "azure_devops",
            "name": "ado",
            "url": sandbox.organization_url,
            "project": sandbox.project,
            "auth": {"token_env": "ADO_PAT"},
            "wsjf_fields": {"risk_reduction": "Custom.RiskReduction", "score": SCORE},
            "workers": 2,
        }
    )
    return AzureDevOpsConnector(
        settings, environ={"ADO_PAT": sandbox.pat}, sleep=sleep, clock=sleep.clock, cache_dir=None
    )


def score_writes(sandbox: AzureDevOpsSandbox, ids: range) -> tuple[PlannedWrite, ...]:
    return tuple(
        PlannedWrite(
            "ado", str(n), WriteField.WSJF_SCORE, None, n / 4, str(sandbox.work_item(n)["rev"])
        )
        for n in ids
    )


def test_the_connector_writes_250_items_in_two_requests_and_keeps_conflicts_apart() -> None:
    with AzureDevOpsSandbox(many_items(250, start=1), clock=lambda: NOW) as sandbox:
        connector = connector_for(sandbox, FakeSleep())
        writes = score_writes(sandbox, range(1, 251))
        sandbox.touch(7, **{"System.Title": "Edited by a person"})

        results = {r.write.item_key: r for r in connector.push(ConnectionPlan("ado", writes))}

        assert connector.stats.by_endpoint[BATCH] == 2
        assert results["7"].status is WriteStatus.CONFLICT
        assert "VS403351" in (results["7"].error or "")
        written = {key for key, r in results.items() if r.status is WriteStatus.WRITTEN}
        assert written == {str(n) for n in range(1, 251)} - {"7"}
        assert sorted(int(w.key) for w in sandbox.writes) == sorted(map(int, written))
        assert sandbox.work_item(250)["fields"][SCORE] == 62.5


def test_a_throttled_batch_is_retried_and_every_item_is_written_once() -> None:
    with AzureDevOpsSandbox(many_items(30, start=1), clock=lambda: NOW) as sandbox:
        sleep = FakeSleep()
        connector = connector_for(sandbox, sleep)
        writes = score_writes(sandbox, range(1, 31))
        connector.field_map()  # fields first, so only the batch meets the faults
        sandbox.set_faults(
            Faults(
                throttle_rate=0.5,
                unavailable_rate=0.3,
                retry_after_seconds=2,
                seed=3,
                only_paths=("$batch",),
            )
        )

        results = list(connector.push(ConnectionPlan("ado", writes)))

        assert {r.status for r in results} == {WriteStatus.WRITTEN}
        assert connector.stats.by_endpoint[BATCH] >= 2 and connector.stats.throttled >= 1
        assert any(2.0 <= wait <= 2.2 for wait in sleep.waits)
        assert sorted(int(w.key) for w in sandbox.writes) == list(range(1, 31))
