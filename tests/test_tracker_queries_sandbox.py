"""Saved queries against the sandbox trackers over HTTP: Jira Cloud, Jira Data Center and Azure
DevOps, each answer checked against the seeded portfolio, with the requests each run cost."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pytest

from connectors.azure_devops import AzureDevOpsConnector
from connectors.base import QueryAnswer, QueryMatch, QueryRefused, TrackerQuery
from connectors.jira import JiraConnector
from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.generator import generate_portfolio
from connectors.sandbox.jira_server import JiraSandbox
from connectors.sandbox.portfolio import SeedItem, SeedPortfolio
from connectors.sandbox.server import NO_FAULTS, Faults, SandboxServer
from connectors.values import number_or_problem
from tests import sandbox_connectors

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

REFERENCE = datetime(2026, 3, 2, tzinfo=UTC)
APPROXIMATE_COUNT = "POST /rest/api/3/search/approximate-count"
JQL_SEARCH = "POST /rest/api/3/search/jql"
DC_SEARCH = "POST /rest/api/2/search"
WIQL = "POST /sandbox/Portfolio/_apis/wit/wiql"
BATCH = "POST /sandbox/Portfolio/_apis/wit/workItemsBatch"
FIELDS = "GET /sandbox/Portfolio/_apis/wit/fields"
RETRY = {"max_attempts": 3, "base_delay_seconds": 0.01, "max_wait_seconds": 5}


@cache
def portfolio() -> SeedPortfolio:
    return generate_portfolio(1200, seed=5, jira_share=0.5, now=REFERENCE)


@dataclass
class HealingSleep:
    """A sleep that ends the sandbox's faults: the retry after it gets through. Keeps a
    monotonic clock for the Azure DevOps policy."""

    sandbox: SandboxServer
    waits: list[float] = field(default_factory=list)
    now: float = 1000.0

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds
        self.sandbox.set_faults(NO_FAULTS)

    def clock(self) -> float:
        return self.now


def labelled(items: list[SeedItem], label: str) -> list[SeedItem]:
    return [item for item in items if label.casefold() in (x.casefold() for x in item.labels)]


def matches_of(items: list[SeedItem], value: Callable[[SeedItem], Any] | None = None) -> set[Any]:
    """The matches a query over `items` should answer, as a set (order is the tracker's)."""
    return {
        QueryMatch(
            item.key,
            item.status_category == "Done",
            None if value is None else number_or_problem(value(item))[0],
        )
        for item in items
    }


def answered(answer: QueryAnswer | QueryRefused) -> QueryAnswer:
    assert isinstance(answer, QueryAnswer), answer
    return answer


# -- Jira --------------------------------------------------------------------------------------
@pytest.fixture(params=("cloud", "datacenter"))
def jira(request: pytest.FixtureRequest) -> Iterator[JiraSandbox]:
    with JiraSandbox(portfolio().jira, flavour=request.param) as sandbox:
        yield sandbox


def jira_connector(sandbox: JiraSandbox) -> tuple[JiraConnector, HealingSleep]:
    sleep = HealingSleep(sandbox)
    connector = sandbox_connectors.jira_connector(
        sandbox, jql="project in (PAY, WEB, MOB, DATA)", sleep=sleep, workers=3, retry=RETRY
    )
    return connector, sleep


def test_jira_counts_and_items_match_the_portfolio(jira: JiraSandbox) -> None:
    items = portfolio().jira
    mob_kr1 = [item for item in labelled(items, "kr-1") if item.project == "MOB"]
    done_epics = [i for i in items if i.type == "Epic" and i.status_category == "Done"]
    kr2 = labelled(items, "kr-2")
    assert mob_kr1 and done_epics and kr2
    connector, _ = jira_connector(jira)

    answers = connector.run_queries(
        [
            TrackerQuery("mob", "project = MOB AND labels = kr-1"),
            TrackerQuery("epics", "issuetype = Epic AND statusCategory = Done"),
            TrackerQuery("kr2", "labels = kr-2 ORDER BY rank", want="items", field="Job Size"),
            TrackerQuery("kr2 count", "labels = kr-2 ORDER BY rank"),
            TrackerQuery("nothing", "project = MOB AND labels = kr-1-2", want="items"),
        ]
    )

    cloud = jira.flavour == "cloud"
    assert answers["mob"] == QueryAnswer(len(mob_kr1), approximate=cloud)
    assert answers["epics"] == QueryAnswer(len(done_epics), approximate=cloud)
    sums = answered(answers["kr2"])
    assert sums.count == len(kr2) and sums.matches is not None
    assert set(sums.matches) == matches_of(kr2, lambda item: item.job_size)
    assert answers["kr2 count"] == QueryAnswer(len(kr2))  # read off the items, exact
    assert answers["nothing"] == QueryAnswer(0, matches=())
    by_endpoint = connector.stats.by_endpoint
    if cloud:
        assert by_endpoint[APPROXIMATE_COUNT] == 2
        assert by_endpoint[JQL_SEARCH] == 1 + 1  # kr-2 fits a page of 100; nothing: 1 page
    else:
        assert by_endpoint[DC_SEARCH] == 2 + 1 + 1
    assert connector.stats.requests == 2 + 4  # serverInfo and field, then one per query
    assert jira.request_count == connector.stats.requests


def test_jira_refuses_what_it_cannot_answer_and_retries_a_throttled_count(
    jira: JiraSandbox,
) -> None:
    items = portfolio().jira
    connector, sleep = jira_connector(jira)
    connector.run_queries([TrackerQuery("warm", "project = PAY")])  # serverInfo, field
    before = connector.stats.requests
    jira.set_faults(Faults(throttle_rate=1.0, retry_after_seconds=1, only_paths=("/search",)))

    answers = connector.run_queries(
        [
            TrackerQuery("throttled", "labels = kr-3"),
            TrackerQuery("bad jql", "project = = MOB"),
            TrackerQuery("bad field", "labels = kr-3", want="items", field="Job Sise"),
        ]
    )

    assert answers["throttled"] == QueryAnswer(
        len(labelled(items, "kr-3")), approximate=jira.flavour == "cloud"
    )
    assert len(sleep.waits) == 1 and connector.stats.throttled == 1
    refused = answers["bad jql"]
    assert isinstance(refused, QueryRefused)
    assert "Expecting either a value, list or function but got '='" in refused.reason
    unknown = answers["bad field"]
    assert isinstance(unknown, QueryRefused)
    assert "'Job Sise' does not exist" in unknown.reason and "Job Size (" in unknown.reason
    assert connector.stats.requests - before == 3  # 429 + retry, the refused query
    # The sandbox counts what it served, not the 429 its fault injection sent instead.
    assert jira.request_count == connector.stats.requests - 1


# -- Azure DevOps ------------------------------------------------------------------------------
@pytest.fixture
def ado() -> Iterator[AzureDevOpsSandbox]:
    with AzureDevOpsSandbox(portfolio().azure_devops) as sandbox:
        yield sandbox


def ado_connector(sandbox: AzureDevOpsSandbox) -> tuple[AzureDevOpsConnector, HealingSleep]:
    sleep = HealingSleep(sandbox)
    fields = {
        "risk_reduction": sandbox_connectors.ADO_RISK_REDUCTION,
        "score": "WSJF Score",
        "cost_of_delay": "Cost of Delay",
    }
    connector = sandbox_connectors.ado_connector(
        sandbox,
        sleep=sleep,
        clock=sleep.clock,
        name="ado",
        wsjf_fields=fields,
        workers=3,
        retry=RETRY,
    )
    return connector, sleep


def test_ado_counts_and_items_match_the_portfolio(ado: AzureDevOpsSandbox) -> None:
    items = portfolio().azure_devops
    kr1 = labelled(items, "KR-1")
    closed_epics = [i for i in items if i.type == "Epic" and i.status_category == "Done"]
    kr2 = labelled(items, "KR-2")
    assert kr1 and closed_epics and kr2
    connector, _ = ado_connector(ado)

    answers = connector.run_queries(
        [
            TrackerQuery("kr1", "[System.Tags] CONTAINS 'KR-1'"),
            TrackerQuery(
                "epics",
                "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project "
                "AND [System.WorkItemType] = 'Epic' AND [System.State] = 'Closed'",
            ),
            TrackerQuery("kr2", "[System.Tags] CONTAINS 'KR-2'", want="items", field="Effort"),
            TrackerQuery("nothing", "[System.Tags] CONTAINS 'kr:1.2'", want="items"),
        ]
    )

    assert answers["kr1"] == QueryAnswer(len(kr1))
    assert answers["epics"] == QueryAnswer(len(closed_epics))
    sums = answered(answers["kr2"])
    assert sums.matches is not None
    assert set(sums.matches) == matches_of(kr2, lambda item: item.job_size)
    assert answers["nothing"] == QueryAnswer(0, matches=())
    by_endpoint = connector.stats.by_endpoint
    assert by_endpoint[WIQL] == 4
    assert by_endpoint[BATCH] == -(-len(kr2) // 200)
    assert by_endpoint[FIELDS] == 1
    assert connector.stats.requests == 1 + 4 + by_endpoint[BATCH] + 1  # discovery first
    assert ado.request_count == connector.stats.requests


def test_ado_refuses_what_it_cannot_answer_and_retries_a_throttled_query(
    ado: AzureDevOpsSandbox,
) -> None:
    items = portfolio().azure_devops
    connector, sleep = ado_connector(ado)
    connector.run_queries([TrackerQuery("warm", "[System.State] = 'New'")])  # discovery
    before = connector.stats.requests
    ado.set_faults(Faults(throttle_rate=1.0, retry_after_seconds=1, only_paths=("/wiql",)))

    answers = connector.run_queries(
        [
            TrackerQuery("throttled", "[System.Tags] CONTAINS 'KR-3'"),
            TrackerQuery("bad wiql", "[System.State] = = 'Closed'"),
            TrackerQuery("bad field", "[System.Tags] CONTAINS 'KR-3'", want="items", field="Efort"),
        ]
    )

    assert answers["throttled"] == QueryAnswer(len(labelled(items, "KR-3")))
    assert len(sleep.waits) == 1 and connector.stats.throttled == 1
    refused = answers["bad wiql"]
    assert isinstance(refused, QueryRefused)
    assert refused.reason.startswith("Azure DevOps rejected the query: ")
    unknown = answers["bad field"]
    assert isinstance(unknown, QueryRefused)
    assert "'Efort' does not exist" in unknown.reason and "Effort (" in unknown.reason
    # 429 + retry, the refused WIQL, the field list; the unknown field asks no WIQL.
    assert connector.stats.requests - before == 4
    assert ado.request_count == connector.stats.requests - 1  # the 429 was not served


def test_ado_after_a_pull_a_field_the_pull_resolved_costs_no_field_list(
    ado: AzureDevOpsSandbox,
) -> None:
    items = portfolio().azure_devops
    connector, _ = ado_connector(ado)
    assert len(list(connector.pull(None))) == len(items)
    before = connector.stats.by_endpoint[FIELDS]
    assert before == 0  # the pull resolved its fields through the scope query's columns

    answers = connector.run_queries(
        [
            TrackerQuery("effort", "[System.Tags] CONTAINS 'KR-1'", want="items", field="Effort"),
            TrackerQuery(
                "by reference",
                "[System.Tags] CONTAINS 'KR-2'",
                want="items",
                field="Microsoft.VSTS.Scheduling.Effort",
            ),
        ]
    )

    effort = answered(answers["effort"])
    assert set(effort.matches or ()) == matches_of(labelled(items, "KR-1"), lambda i: i.job_size)
    assert answered(answers["by reference"]).count == len(labelled(items, "KR-2"))
    assert connector.stats.by_endpoint[FIELDS] == before  # the scope query's columns served

    other = connector.run_queries(
        [
            TrackerQuery(
                "points", "[System.Tags] CONTAINS 'KR-1'", want="items", field="Story Points"
            )
        ]
    )
    points = answered(other["points"])  # the seeds set no story points: no value, no zero
    assert points.count == len(effort.matches or ()) and points.matches is not None
    assert {match.value for match in points.matches} == {None}
    assert connector.stats.by_endpoint[FIELDS] == before + 1  # a name the pull never met
