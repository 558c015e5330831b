"""The spm-sync side of `bench.kr_queries`: a connector's pull, then the Key Results' queries as
the portfolio stage asks them (`spm_sync.pipeline.portfolio_queries.ask` with the pulled items as
its `StoreView`), run in a worker.

`python -m bench.kr_query_stage [--quick] [--half-scope]`: the request counts alone of the
queries asked the way they were before the store answered done-ness (every `share_done` and
`sum` measure reading its matches: `want="items"`) and the way they are now, at either size,
without latency or baseline (two minutes at full size, where the benchmark takes twelve)."""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from bench.connections import (
    ado_environ,
    ado_settings,
    ado_target,
    jira_environ,
    jira_settings,
    jira_target,
    project_jql,
)
from bench.full_sync import FULL_SIZES, QUICK_SIZES
from bench.kr_query_mix import Query, ado_queries, jira_queries
from connectors.azure_devops import AzureDevOpsConnector
from connectors.base import QueryAnswer
from connectors.jira import JiraConnector
from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.generator import generate_portfolio
from connectors.sandbox.jira_server import JiraSandbox
from spm_sync.config.okr_measures import KeyResultExtras
from spm_sync.engines.portfolio.measures import Measure, MeasureKind
from spm_sync.pipeline.portfolio_keys import QueryLanguage, StoreView
from spm_sync.pipeline.portfolio_queries import QuerySource, ask, batches

HALF_PROJECTS = ("PAY", "WEB")
HALF_AREAS = ("Payments", "Web")
"""The scope of the `_half_scope` entries: two of the four projects / areas, so the pulled
items hold about half of the matches and the rest is read by the follow-up."""
Outcome = dict[str, list[float] | str]
"""Per ident: [count, done, sum] (done and sum -1 for a count), or the refusal's reason."""


def _measure_of(query: Query) -> Measure:
    if query.get("want") != "items":
        return Measure(MeasureKind.COUNT)
    if query.get("field"):
        return Measure(MeasureKind.SUM, query["field"])
    return Measure(MeasureKind.SHARE_DONE)


def _outcome(answers: Mapping[str, Any]) -> Outcome:
    outcome: Outcome = {}
    for ident, answer in answers.items():
        if not isinstance(answer, QueryAnswer):
            outcome[ident] = str(answer.reason)
        elif answer.matches is None:
            outcome[ident] = [answer.count, -1, -1]
        else:
            done = sum(match.done for match in answer.matches)
            total = sum(match.value or 0.0 for match in answer.matches)
            outcome[ident] = [answer.count, done, round(total, 6)]
    return outcome


def spm_jira(target: Mapping[str, Any], queries: Sequence[Query]) -> dict[str, Any]:
    connector = JiraConnector(jira_settings(target), environ=jira_environ(target))
    try:
        return _spm_stage(connector, "jql", queries)
    finally:
        connector.close()


def spm_ado(target: Mapping[str, Any], queries: Sequence[Query]) -> dict[str, Any]:
    scope = {"area_paths": target["area_paths"]} if target.get("area_paths") else {}
    connector = AzureDevOpsConnector(
        ado_settings(target, scope=scope), environ=ado_environ(target), cache_dir=None
    )
    try:
        return _spm_stage(connector, "wiql", queries)
    finally:
        connector.close()


def _spm_stage(connector: Any, language: QueryLanguage, queries: Sequence[Query]) -> dict[str, Any]:
    """The pull, then the Key Results' queries as the portfolio stage asks them; `seconds`
    (which the worker's own timing gives way to) is the queries' alone."""
    name = connector.name
    pulled = {(item.connection, item.key): item for item in connector.pull(None)}
    pull_requests = connector.stats.requests
    before = Counter(connector.stats.by_endpoint)
    started = time.perf_counter()
    measured = _measured(connector, queries)
    store = StoreView(pulled, {name: language}, _attribute_of(connector))
    planned = batches(measured, store)
    answers, _ = ask(planned, {name: QuerySource(connector)}, store)
    seconds = time.perf_counter() - started
    got = answers[name]
    keyed = [query.ident for query in planned[name] if query.want == "keys"]
    listed = {
        match.key
        for answer in got.values()
        if isinstance(answer, QueryAnswer)
        for match in answer.matches or ()
    }
    read = {
        match.key
        for query in planned[name]
        if query.want == "items" and isinstance(answer := got[query.ident], QueryAnswer)
        for match in answer.matches or ()
    }
    outside = {
        match.key
        for ident in keyed
        if isinstance(answer := got[ident], QueryAnswer)
        for match in answer.matches or ()
        if (name, match.key) not in pulled
    }
    return {
        "items": len(got),
        "seconds": seconds,
        "distinct_matches": len(listed),
        "wants": {query.ident: query.want for query in planned[name]},
        "items_query_matches": len(read),
        "followed_up_matches": len(outside),
        "outcome": _outcome(got),
        "client_requests": connector.stats.requests,
        "pull_requests": pull_requests,
        "query_by_endpoint": dict(sorted((Counter(connector.stats.by_endpoint) - before).items())),
        "approximate_counts": sum(
            1 for a in got.values() if isinstance(a, QueryAnswer) and a.approximate
        ),
    }


def _measured(connector: Any, queries: Sequence[Query]) -> dict[str, KeyResultExtras]:
    return {
        query["ident"]: KeyResultExtras(
            measure=_measure_of(query), queries={connector.name: query["text"]}
        )
        for query in queries
    }


def both_ways(connector: Any, language: QueryLanguage, queries: Sequence[Query]) -> list[int]:
    """Requests of the queries asked as before (items) and as now (keys and the store), after
    one pull."""
    name = connector.name
    pulled = {(item.connection, item.key): item for item in connector.pull(None)}
    measured = _measured(connector, queries)
    spent = []
    for store in (None, StoreView(pulled, {name: language}, _attribute_of(connector))):
        before = connector.stats.requests
        ask(batches(measured, store), {name: QuerySource(connector)}, store)
        spent.append(connector.stats.requests - before)
    return spent


def _attribute_of(connector: Any) -> Any:
    return lambda _, field: connector.stored_field(field)


def requests_only(quick: bool, half: bool) -> dict[str, list[int]]:
    """Per tracker, the requests of the queries asked as before and as now (`both_ways`);
    `half` pulls the `_half_scope` projects and areas only."""
    jira_size, ado_size = QUICK_SIZES if quick else FULL_SIZES
    total = jira_size + ado_size
    portfolio = generate_portfolio(total, jira_share=jira_size / total)
    kr_count = len(portfolio.key_results)
    jql = f"project in ({', '.join(HALF_PROJECTS)})" if half else project_jql(portfolio.jira)
    scope = {"area_paths": [f"Portfolio\\{area}" for area in HALF_AREAS]} if half else {}
    found: dict[str, list[int]] = {}
    for flavour in ("cloud", "datacenter"):
        with JiraSandbox(portfolio.jira, flavour=flavour) as sandbox:
            job = jira_target(sandbox, jql)
            jira = JiraConnector(jira_settings(job), environ=jira_environ(job))
            found[f"jira_{flavour}"] = both_ways(jira, "jql", jira_queries(kr_count))
            jira.close()
    with AzureDevOpsSandbox(portfolio.azure_devops) as sandbox:
        job = ado_target(sandbox)
        settings = ado_settings(job, scope=scope)
        ado = AzureDevOpsConnector(settings, environ=ado_environ(job), cache_dir=None)
        found["azure_devops"] = both_ways(ado, "wiql", ado_queries(kr_count))
        ado.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--half-scope", action="store_true", help="pull two projects / areas")
    args = parser.parse_args()
    for name, (before, now) in requests_only(args.quick, args.half_scope).items():
        print(f"{name}: {before} requests asking for items, {now} asking for keys")


if __name__ == "__main__":
    main()
