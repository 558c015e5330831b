"""The Azure DevOps connector against the Azure DevOps sandbox over HTTP on 127.0.0.1.

The unmodified `azure-devops` library and our session/policy talk to
`connectors.sandbox.ado_server.AzureDevOpsSandbox`, which serves a seeded portfolio from
`connectors.sandbox.generator`: the WIQL cap, batch reads, JSON Patch with the `/rev` test,
human edits (`touch`) and faults (429/503 with Retry-After, delayed 200s) are the sandbox's.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from connectors.azure_devops import AzureDevOpsConnector
from connectors.sandbox.ado_server import AzureDevOpsSandbox, RateLimitDelay
from connectors.sandbox.generator import generate_portfolio
from connectors.sandbox.portfolio import SeedItem
from tests import sandbox_connectors
from tests.azure_devops_fixtures import FakeSleep

pytestmark = pytest.mark.integration

WIQL = "POST /sandbox/Portfolio/_apis/wit/wiql"
BATCH = "POST /sandbox/Portfolio/_apis/wit/workItemsBatch"
SMALL = (400, 21)  # size and seed of the portfolio most tests use


def connector_for(sandbox: AzureDevOpsSandbox, **options: Any) -> AzureDevOpsConnector:
    sleep = options.pop("sleep", None) or FakeSleep()
    fields = {
        "risk_reduction": sandbox_connectors.ADO_RISK_REDUCTION,
        "score": "WSJF Score",
        "cost_of_delay": "Cost of Delay",
    }
    return sandbox_connectors.ado_connector(
        sandbox,
        sleep=sleep,
        clock=sleep.clock,
        name="ado",
        wsjf_fields=fields,
        workers=4,
        **options,
    )


def seed_items(size: int, seed: int = 7) -> list[SeedItem]:
    return generate_portfolio(size, seed=seed, jira_share=0.0).azure_devops


@pytest.fixture
def sandbox() -> Iterator[AzureDevOpsSandbox]:
    with AzureDevOpsSandbox(seed_items(*SMALL)) as running:
        yield running  # type: ignore[misc]


@pytest.mark.slow
def test_full_sync_of_25000_items_gets_every_item_once() -> None:
    items = seed_items(25_000, seed=5)
    with AzureDevOpsSandbox(items) as sandbox:
        connector = connector_for(sandbox)
        pulled = [item.key for item in connector.pull(None)]

        assert len(pulled) == len(set(pulled)) == 25_000
        assert set(pulled) == {seed.key for seed in items}
        # Keyset paging by id with $top: two WIQL queries, never the VS402337 refusal.
        assert connector.stats.by_endpoint[WIQL] == 2
        assert connector.stats.by_endpoint[BATCH] == 125

        # A page larger than the cap meets the refusal, and id windows still find everything.
        splitting = connector_for(sandbox, wiql_page_size=25_000)
        keys = splitting.scan_keys()
        assert keys == set(pulled)
        assert 3 <= splitting.stats.by_endpoint[WIQL] <= 6


def test_a_sync_with_no_changes_costs_at_most_two_requests(
    sandbox: AzureDevOpsSandbox, tmp_path: Any
) -> None:
    full = list(connector_for(sandbox).pull(None))
    since = max(item.updated for item in full) + timedelta(milliseconds=1)

    cold = connector_for(sandbox)
    assert list(cold.pull(since)) == []
    assert cold.stats.requests == 2  # resource-location discovery + one WIQL query

    connector_for(sandbox, cache_dir=tmp_path).scan_keys()  # warms the discovery cache
    warm = connector_for(sandbox, cache_dir=tmp_path)
    assert list(warm.pull(since)) == []
    assert warm.stats.by_endpoint == {WIQL: 1}


def test_delayed_answers_pace_the_client_and_report_rate_limits(
    sandbox: AzureDevOpsSandbox,
) -> None:
    sandbox.set_delay(RateLimitDelay(seconds=0.05, rate=1.0, only_paths=("/wiql",)))
    sleep = FakeSleep()
    connector = connector_for(sandbox, sleep=sleep)

    assert len(list(connector.pull(None))) == 400

    assert connector.stats.throttled >= 1 and sleep.waits
    assert "X-RateLimit-Remaining" in connector.stats.rate_limit
    assert connector.stats.retries == 0
