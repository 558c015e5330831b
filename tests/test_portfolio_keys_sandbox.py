"""Key Results measured from the keys of their matches, against the sandbox trackers over HTTP:
keys queries answer the seeded portfolio's keys in the largest pages, the connectors say where
the pulled items keep a summed field, and the portfolio stage, with a store holding only part
of the matches (a one-project or one-area scope), reads the rest in one follow-up per
connection and measures exactly what reading every match from the tracker measures."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pytest

from connectors.azure_devops import AzureDevOpsConnector
from connectors.base import QueryAnswer, QueryRefused, TrackerQuery
from connectors.jira import JiraConnector
from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.generator import generate_portfolio
from connectors.sandbox.jira_fields import WSJF_FIELD_NAMES
from connectors.sandbox.jira_server import JiraSandbox
from connectors.sandbox.portfolio import SeedItem, SeedPortfolio
from connectors.values import number_or_problem
from spm_sync.config.okr_measures import KeyResultExtras
from spm_sync.core.domain import WorkItem
from spm_sync.engines.portfolio.measures import Measure, MeasureKind, QueryCount, QueryResult
from spm_sync.pipeline.portfolio_keys import QueryLanguage, StoreView
from spm_sync.pipeline.portfolio_queries import QuerySource, ask, batches, outcomes
from tests import sandbox_connectors

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

REFERENCE = datetime(2026, 3, 2, tzinfo=UTC)
JQL_SEARCH = "POST /rest/api/3/search/jql"
DC_SEARCH = "POST /rest/api/2/search"
WIQL = "POST /sandbox/Portfolio/_apis/wit/wiql"
BATCH = "POST /sandbox/Portfolio/_apis/wit/workItemsBatch"
SHARE = Measure(MeasureKind.SHARE_DONE)
COUNT = Measure(MeasureKind.COUNT)


@cache
def portfolio() -> SeedPortfolio:
    return generate_portfolio(1200, seed=5, jira_share=0.5, now=REFERENCE)


def labelled(items: Sequence[SeedItem], label: str) -> list[SeedItem]:
    return [item for item in items if label.casefold() in (x.casefold() for x in item.labels)]


class Recording:
    """A connector whose saved-query batches are kept, to see what each call asked."""

    def __init__(self, connector: Any) -> None:
        self.connector = connector
        self.batches: list[list[TrackerQuery]] = []

    def run_queries(self, queries: Sequence[TrackerQuery]) -> dict[str, Any]:
        self.batches.append(list(queries))
        answers: dict[str, Any] = self.connector.run_queries(queries)
        return answers


def expected(items: Sequence[SeedItem]) -> tuple[float, float]:
    """(share done in percent, sum of job sizes) over `items`, as the measures compute them."""
    done = sum(1 for item in items if item.status_category == "Done")
    sizes = [number_or_problem(item.job_size)[0] for item in items]
    return round(100.0 * done / len(items), 1), sum(s for s in sizes if s is not None)


def measured_both_ways(
    connection: str,
    connector: Any,
    pulled: list[WorkItem],
    language: QueryLanguage,
    measured: dict[str, KeyResultExtras],
) -> tuple[dict[str, Any], dict[str, Any], Recording, int]:
    """The Key Results' outcomes from keys and the store, from items alone (the reference),
    the recorded batches of the former, and the requests it cost."""
    store = StoreView(
        {(item.connection, item.key): item for item in pulled},
        {connection: language},
        lambda _, field: connector.stored_field(field),
    )
    recording = Recording(connector)
    before = connector.stats.requests
    planned = batches(measured, store)
    answers, runs = ask(planned, {connection: QuerySource(recording)}, store)
    cost = connector.stats.requests - before
    assert [(r.queries, r.failed, r.error) for r in runs] == [(len(measured), 0, None)]
    reference, _ = ask(batches(measured), {connection: QuerySource(connector)})
    return outcomes(measured, answers), outcomes(measured, reference), recording, cost


def jql_keys(text: str) -> set[str]:
    return set(re.findall(r'"([A-Z]+-\d+)"', text))


# -- Jira --------------------------------------------------------------------------------------
@pytest.fixture(params=("cloud", "datacenter"))
def jira(request: pytest.FixtureRequest) -> Iterator[JiraSandbox]:
    with JiraSandbox(portfolio().jira, flavour=request.param) as sandbox:
        yield sandbox


def jira_connector(sandbox: JiraSandbox, jql: str) -> JiraConnector:
    return sandbox_connectors.jira_connector(sandbox, jql=jql, name="jira", workers=3)


def test_jira_keys_answer_the_portfolio_in_the_largest_pages(jira: JiraSandbox) -> None:
    pay = [item for item in portfolio().jira if item.project == "PAY"]
    assert len(pay) > 100  # more than a page of issues with fields on Cloud
    connector = jira_connector(jira, "project = PAY")

    answers = connector.run_queries(
        [
            TrackerQuery("pay", "project = PAY ORDER BY rank", want="keys"),
            TrackerQuery("nothing", "labels = kr-1-2", want="keys"),
        ]
    )

    pay_keys = answers["pay"]
    assert isinstance(pay_keys, QueryAnswer) and pay_keys.keys is not None
    assert pay_keys.count == len(pay) and set(pay_keys.keys) == {item.key for item in pay}
    assert answers["nothing"] == QueryAnswer(0, keys=())
    search = JQL_SEARCH if jira.flavour == "cloud" else DC_SEARCH
    assert connector.stats.by_endpoint[search] == 2  # one page each: 5,000 / 1,000 a page
    assert jira.request_count == connector.stats.requests


def test_jira_says_which_pulled_attribute_holds_a_field(jira: JiraSandbox) -> None:
    connector = jira_connector(jira, "project = PAY")
    assert connector.stored_field("Job Size") is None  # the run has not read its fields yet
    list(connector.pull(None))
    before = connector.stats.requests

    assert connector.stored_field(WSJF_FIELD_NAMES["job_size"]) == "job_size"
    assert connector.stored_field(WSJF_FIELD_NAMES["job_size"].upper()) == "job_size"
    assert connector.stored_field(WSJF_FIELD_NAMES["business_value"]) == "business_value"
    assert connector.stored_field("Summary") is None  # a field, but no WSJF input's
    assert connector.stored_field("No Such Field") is None
    assert connector.stats.requests == before  # from the run's field list


def test_jira_stage_reads_only_matches_outside_the_scope(jira: JiraSandbox) -> None:
    items = portfolio().jira
    connector = jira_connector(jira, "project = PAY")
    pulled = list(connector.pull(None))
    job_size = WSJF_FIELD_NAMES["job_size"]
    measured = {
        "KR-share": KeyResultExtras(measure=SHARE, queries={"jira": "labels = kr-2"}),
        "KR-sum": KeyResultExtras(
            measure=Measure(MeasureKind.SUM, job_size), queries={"jira": "labels = kr-3"}
        ),
        "KR-count": KeyResultExtras(measure=COUNT, queries={"jira": "labels = kr-1"}),
        "KR-in-scope": KeyResultExtras(
            measure=SHARE, queries={"jira": "project = PAY AND labels = kr-3"}
        ),
    }
    outside = {
        item.key
        for label in ("kr-2", "kr-3")
        for item in labelled(items, label)
        if item.project != "PAY"
    }
    assert outside and any(i.project == "PAY" for i in labelled(items, "kr-2"))

    found, reference, recording, cost = measured_both_ways(
        "jira", connector, pulled, "jql", measured
    )

    assert found == reference
    share = found["KR-share"]
    sums = found["KR-sum"]
    assert isinstance(share, QueryResult) and isinstance(sums, QueryResult)
    assert len(share.items) == len(labelled(items, "kr-2"))
    assert expected(labelled(items, "kr-2"))[0] == pytest.approx(
        100.0 * sum(m.done for m in share.items) / len(share.items), abs=0.05
    )
    assert sum(m.value or 0 for m in sums.items) == expected(labelled(items, "kr-3"))[1]
    assert isinstance(found["KR-count"], QueryCount)
    first, follow_up = recording.batches
    assert {q.ident: q.want for q in first} == {
        "KR-share": "keys",
        "KR-sum": "keys",
        "KR-count": "count",
        "KR-in-scope": "keys",
    }
    (query,) = follow_up  # one query for both Key Results' missing matches, with the sum field
    assert (query.want, query.field) == ("items", job_size)
    assert jql_keys(query.text) == outside  # what the store lacks, nothing it holds
    cloud = jira.flavour == "cloud"
    # 3 keys searches and a count, then the follow-up's one page (fewer than 100 issues).
    assert cost == 3 + 1 + 1
    assert connector.stats.by_endpoint[JQL_SEARCH if cloud else DC_SEARCH] >= 4


def test_jira_stage_with_every_match_in_the_store_asks_no_follow_up(jira: JiraSandbox) -> None:
    connector = jira_connector(jira, "project in (PAY, WEB, MOB, DATA, OKR)")
    pulled = list(connector.pull(None))
    measured = {"KR": KeyResultExtras(measure=SHARE, queries={"jira": "labels = kr-2"})}

    found, reference, recording, cost = measured_both_ways(
        "jira", connector, pulled, "jql", measured
    )

    assert found == reference
    assert len(recording.batches) == 1 and cost == 1


def test_jira_refused_follow_up_fails_only_the_key_results_that_needed_it(
    jira: JiraSandbox,
) -> None:
    connector = jira_connector(jira, "project = PAY")
    pulled = list(connector.pull(None))
    measured = {
        "KR-out": KeyResultExtras(measure=SHARE, queries={"jira": "labels = kr-2"}),
        "KR-in": KeyResultExtras(
            measure=SHARE, queries={"jira": "project = PAY AND labels = kr-2"}
        ),
    }
    store = StoreView(
        {(item.connection, item.key): item for item in pulled},
        {"jira": "jql"},
        lambda _, field: connector.stored_field(field),
    )

    class RefusingFollowUps(Recording):
        def run_queries(self, queries: Sequence[TrackerQuery]) -> dict[str, Any]:
            if any(query.want == "items" for query in queries):
                return {q.ident: QueryRefused("Jira is read-only for a minute") for q in queries}
            return super().run_queries(queries)

    answers, runs = ask(
        batches(measured, store), {"jira": QuerySource(RefusingFollowUps(connector))}, store
    )
    found = outcomes(measured, answers)

    assert isinstance(found["KR-in"], QueryResult)
    failed = found["KR-out"]
    assert not isinstance(failed, QueryResult | QueryCount)
    assert "outside the synced items (" in failed.reason
    assert failed.reason.endswith("failed: Jira is read-only for a minute")
    assert [(r.queries, r.failed) for r in runs] == [(2, 1)]


# -- Azure DevOps ------------------------------------------------------------------------------
@pytest.fixture
def ado() -> Iterator[AzureDevOpsSandbox]:
    with AzureDevOpsSandbox(portfolio().azure_devops) as sandbox:
        yield sandbox


def ado_connector(sandbox: AzureDevOpsSandbox, area: str) -> AzureDevOpsConnector:
    return sandbox_connectors.ado_connector(
        sandbox, name="ado", scope={"area_paths": [area]}, workers=3
    )


def test_ado_stage_reads_only_matches_outside_the_scope(ado: AzureDevOpsSandbox) -> None:
    items = portfolio().azure_devops
    connector = ado_connector(ado, "Portfolio\\Payments")
    pulled = list(connector.pull(None))
    assert connector.stored_field("Effort") == "job_size"
    assert connector.stored_field("Microsoft.VSTS.Scheduling.Effort") == "job_size"
    assert connector.stored_field("Story Points") is None
    measured = {
        "KR-share": KeyResultExtras(
            measure=SHARE, queries={"ado": "[System.Tags] CONTAINS 'KR-2'"}
        ),
        "KR-sum": KeyResultExtras(
            measure=Measure(MeasureKind.SUM, "Effort"),
            queries={"ado": "[System.Tags] CONTAINS 'KR-3'"},
        ),
    }
    outside = {
        item.key
        for label in ("KR-2", "KR-3")
        for item in labelled(items, label)
        if not item.project.startswith("Portfolio\\Payments")
    }
    assert outside

    found, reference, recording, cost = measured_both_ways(
        "ado", connector, pulled, "wiql", measured
    )

    assert found == reference
    sums = found["KR-sum"]
    assert isinstance(sums, QueryResult)
    assert sum(m.value or 0 for m in sums.items) == expected(labelled(items, "KR-3"))[1]
    first, follow_up = recording.batches
    assert {q.want for q in first} == {"keys"}
    (query,) = follow_up
    assert query.text.startswith("SELECT [System.Id] FROM WorkItems WHERE [System.Id] IN (")
    assert set(re.findall(r"\d+", query.text)) == outside
    # Two WIQL queries for the keys, then the follow-up's WIQL and one read of 200.
    assert cost == 2 + 1 + 1
    assert connector.stats.by_endpoint[BATCH] >= 1
