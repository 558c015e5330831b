"""Throttling and retries of the Azure DevOps connector: one policy, never stacked on msrest's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses

from connectors.base import ConnectorError
from spm_sync.core.domain import StatusCategory
from tests.azure_devops_fixtures import (
    FakeAzureDevOps,
    FakeSleep,
    make_connector,
    make_settings,
    validate_calls,
    work_item,
)

WIQL = "POST /contoso/Portfolio/_apis/wit/wiql"
BATCH = "POST /contoso/Portfolio/_apis/wit/workitemsbatch"
STATES = "GET /contoso/Portfolio/_apis/wit/workitemtypes/{type}/states"


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps
        validate_calls(rsps.calls)


def test_429_with_retry_after_waits_then_succeeds(mock: responses.RequestsMock) -> None:
    fake = FakeAzureDevOps(mock, {1: work_item(1)})
    fake.fail("/wiql", 429, {"Retry-After": "7", "X-RateLimit-Remaining": "0"})
    sleep = FakeSleep()
    connector = make_connector(sleep=sleep)

    keys = [item.key for item in connector.pull(None)]

    assert keys == ["1"]
    assert connector.stats.by_endpoint[WIQL] == 2
    assert connector.stats.retries == 1 and connector.stats.throttled == 1
    assert len(sleep.waits) == 1 and 7.0 <= sleep.waits[0] <= 7.7
    assert connector.stats.rate_limit["X-RateLimit-Remaining"] == "0"


def test_503_on_a_post_is_retried_by_our_policy_only(mock: responses.RequestsMock) -> None:
    fake = FakeAzureDevOps(mock, {1: work_item(1)})
    fake.fail("/workitemsbatch", 503, {"Retry-After": "1"}, times=100)
    connector = make_connector(make_settings(retry={"max_attempts": 2}))

    with pytest.raises(ConnectorError, match="TF400733"):
        list(connector.pull(None))

    # Two attempts of ours; msrest's urllib3 retries (3 more each) would make it 8.
    assert connector.stats.by_endpoint[BATCH] == 2
    assert len([c for c in mock.calls if "/workitemsbatch" in c.request.url]) == 2


def test_503_on_a_get_is_not_retried_by_msrest_either(mock: responses.RequestsMock) -> None:
    fake = FakeAzureDevOps(mock, {1: work_item(1, **{"System.State": "Parked"})})
    fake.fail("/states", 503, times=100)  # a custom state: the type's states are read
    connector = make_connector(make_settings(retry={"max_attempts": 3}))

    (item,) = connector.pull(None)

    assert (item.status, item.status_category) == ("Parked", StatusCategory.TODO)
    assert connector.stats.by_endpoint[STATES] == 3
    assert len([c for c in mock.calls if "/states" in c.request.url]) == 3
    assert any("could not read the states of 'Epic'" in w for w in connector.warnings)


def test_retry_after_beyond_the_budget_fails_fast(mock: responses.RequestsMock) -> None:
    fake = FakeAzureDevOps(mock, {})
    fake.fail("/wiql", 429, {"Retry-After": "3600"})
    sleep = FakeSleep()
    connector = make_connector(sleep=sleep)

    with pytest.raises(ConnectorError, match="3600"):
        list(connector.pull(None))
    assert sleep.waits == []


def test_retry_after_on_a_success_paces_the_next_request(mock: responses.RequestsMock) -> None:
    fake = FakeAzureDevOps(mock, {1: work_item(1)})
    fake.answer_headers = {
        "Retry-After": "2",
        "X-RateLimit-Resource": "ATCI",
        "X-RateLimit-Delay": "1.500",
        "X-RateLimit-Limit": "200",
        "X-RateLimit-Remaining": "12",
    }
    sleep = FakeSleep()
    connector = make_connector(sleep=sleep)

    list(connector.pull(None))

    assert sleep.waits and all(wait <= 2.0 for wait in sleep.waits)
    assert connector.stats.throttled == len(sleep.waits)
    assert connector.stats.rate_limit["X-RateLimit-Limit"] == "200"
    assert connector.stats.rate_limit["X-RateLimit-Remaining"] == "12"
    assert connector.stats.retries == 0
