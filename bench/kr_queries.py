"""Benchmark: 200 Key Results that measure themselves with saved tracker queries, against the
portfolio (full mode 30,000 Jira + 20,000 Azure DevOps items, quick mode 3,000 + 2,000; 20 ms
latency), on Jira Cloud, Jira Data Center and Azure DevOps. Target (issue "OKRs that measure
themselves"): at most 1 request per Key Result and run.

The 200 queries per tracker (`jira_queries`, `ado_queries`), all different, as Key Results
would write them: 100 counts of one Key Result's label in one project (a few dozen items
each), 40 broad counts (a project's open bugs, its done stories: hundreds to thousands of
items), 40 shares of done items of one Key Result's label across projects, 16 sums of a number
field ("Job Size" / "Effort") over a label in one project, and 4 shares of done epics of a
project (~500 items each).

- spm-sync: one connector's `run_queries` of all 200 (`connectors.jira_queries`,
  `connectors.azure_devops_queries`), default settings (4 workers).
- The baseline, plain library code as a user would write it per Key Result (`bench.baseline`
  style): Jira `search_issues(jql, maxResults=False)` (Data Center; on Cloud, where `/search`
  is gone, `enhanced_search_issues(jql, maxResults=False)`), fetching every matching issue
  with all its fields, then counting, summing, or counting the done ones; the field's id looked
  up once with `fields()`. Azure DevOps: `query_by_wiql` per Key Result (a count is the number
  of ids), then for shares and sums `get_work_items(ids)` per 200 ids.

Every run's answers are reduced to (count, done, sum) per Key Result and compared with the
other side's (and Jira Cloud's approximate counts with the exact ones): a difference fails the
benchmark. Requests are what the sandbox served; `setup_requests` are those a pipeline run has
already made for its pull (Jira serverInfo and field list, the Azure DevOps discovery), which
the target does not count.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Mapping, Sequence
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
from bench.harness import (
    LATENCY_MS,
    Comparison,
    Run,
    measured_run,
    round_robin,
    target,
    warm_up,
)
from bench.kr_query_mix import Query, ado_queries, jira_queries
from bench.report import print_comparison
from connectors.azure_devops import AzureDevOpsConnector
from connectors.base import QueryAnswer, TrackerQuery
from connectors.jira import JiraConnector
from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.generator import generate_portfolio
from connectors.sandbox.jira_server import JiraSandbox
from connectors.sandbox.portfolio import SeedPortfolio
from connectors.sandbox.server import Faults
from connectors.values import number_or_problem

KEY_RESULTS = 200
SETUP_ROUTES = frozenset(
    {
        "GET /rest/api/2/serverInfo",
        "GET /rest/api/2/field",
        "GET /rest/api/3/field",
        "OPTIONS /_apis",
    }
)
SPM, BASELINE = "spm-sync", "baseline"
Outcome = dict[str, list[float] | str]
"""Per ident: [count, done, sum] (done and sum -1 for a count), or the refusal's reason."""


# -- measured in a worker --------------------------------------------------------------------
def _tracker_queries(queries: Sequence[Query]) -> list[TrackerQuery]:
    return [TrackerQuery(**query) for query in queries]


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
        answers = connector.run_queries(_tracker_queries(queries))
    finally:
        connector.close()
    approximate = sum(1 for a in answers.values() if isinstance(a, QueryAnswer) and a.approximate)
    return _spm_result(answers, connector.stats.requests, approximate)


def spm_ado(target: Mapping[str, Any], queries: Sequence[Query]) -> dict[str, Any]:
    connector = AzureDevOpsConnector(
        ado_settings(target), environ=ado_environ(target), cache_dir=None
    )
    try:
        answers = connector.run_queries(_tracker_queries(queries))
    finally:
        connector.close()
    return _spm_result(answers, connector.stats.requests, 0)


def _spm_result(answers: Mapping[str, Any], requests: int, approximate: int) -> dict[str, Any]:
    listed = {
        match.key
        for answer in answers.values()
        if isinstance(answer, QueryAnswer)
        for match in answer.matches or ()
    }
    return {
        "items": len(answers),
        "distinct_matches": len(listed),
        "outcome": _outcome(answers),
        "client_requests": requests,
        "approximate_counts": approximate,
    }


def baseline_jira(
    target: Mapping[str, Any], queries: Sequence[Query], cloud: bool
) -> dict[str, Any]:
    from bench.baseline import jira_client

    jira = jira_client(target)
    field_ids = {f["name"]: f["id"] for f in jira.fields()}
    outcome: Outcome = {}
    for query in queries:
        if cloud:
            issues = jira.enhanced_search_issues(query["text"], maxResults=False)
        else:
            issues = jira.search_issues(query["text"], maxResults=False)
        if query.get("want") != "items":
            outcome[query["ident"]] = [len(issues), -1, -1]
            continue
        done = sum(issue.fields.status.statusCategory.key == "done" for issue in issues)
        total = 0.0
        if query.get("field"):
            field_id = field_ids[query["field"]]
            for issue in issues:
                total += number_or_problem(getattr(issue.fields, field_id, None))[0] or 0.0
        outcome[query["ident"]] = [len(issues), done, round(total, 6)]
    return {"items": len(outcome), "outcome": outcome}


def baseline_ado(target: Mapping[str, Any], queries: Sequence[Query]) -> dict[str, Any]:
    from azure.devops.v7_1.work_item_tracking.models import TeamContext, Wiql

    from bench.baseline import ado_client

    wit = ado_client(target)
    project = target["project"]
    reference = {"Effort": "Microsoft.VSTS.Scheduling.Effort"}
    outcome: Outcome = {}
    for query in queries:
        wiql = (
            "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project "
            f"AND ({query['text']})"
        )
        result = wit.query_by_wiql(Wiql(query=wiql), team_context=TeamContext(project=project))
        ids = [ref.id for ref in result.work_items]
        if query.get("want") != "items":
            outcome[query["ident"]] = [len(ids), -1, -1]
            continue
        items = [
            item
            for start in range(0, len(ids), 200)
            for item in wit.get_work_items(ids[start : start + 200], project=project)
        ]
        done = sum(item.fields["System.State"] in ("Closed", "Done", "Removed") for item in items)
        total = 0.0
        if query.get("field"):
            name = reference[query["field"]]
            total = sum(number_or_problem(item.fields.get(name))[0] or 0.0 for item in items)
        outcome[query["ident"]] = [len(items), done, round(total, 6)]
    return {"items": len(outcome), "outcome": outcome}


# -- orchestration ---------------------------------------------------------------------------
def _checked(name: str, runs: Mapping[str, list[Run]]) -> Outcome:
    """Every run of both sides answered every Key Result the same; returns that outcome."""
    reference: Outcome = runs[SPM][0].detail["outcome"]
    refused = {ident: why for ident, why in reference.items() if isinstance(why, str)}
    if refused:
        raise RuntimeError(f"{name}: spm-sync refused {len(refused)} queries: {refused}")
    for side, side_runs in runs.items():
        for run_ in side_runs:
            outcome = run_.detail["outcome"]
            differing = [i for i in reference if outcome.get(i) != reference[i]]
            if differing or len(outcome) != len(reference):
                sample = {i: (reference[i], outcome.get(i)) for i in differing[:5]}
                raise RuntimeError(f"{name}: a {side} run answered differently: {sample}")
            client = run_.detail.get("client_requests")
            if client is not None and client != run_.requests:
                raise RuntimeError(
                    f"{name}: the connector counted {client} requests, the sandbox {run_.requests}"
                )
    return reference


def floor(name: str, queries: Sequence[Query], outcome: Outcome, distinct_matches: int) -> int:
    """The fewest requests the API allows for the queries (setup aside): one per count; per
    items query one per page of its matches (Jira Cloud 100 with fields, Data Center 1,000);
    on Azure DevOps one WIQL per query, the matches of all items queries read 200 a request,
    and the field list when a query names a field."""
    if name.endswith("azure_devops"):
        fields = any(query.get("field") for query in queries)
        return len(queries) + math.ceil(distinct_matches / 200) + int(fields)
    page = 100 if name.endswith("cloud") else 1000
    total = 0
    for query in queries:
        found = outcome[query["ident"]]
        assert isinstance(found, list)
        items = query.get("want") == "items"
        total += max(1, math.ceil(found[0] / page)) if items else 1
    return total


def _result(name: str, runs: Mapping[str, list[Run]], queries: Sequence[Query]) -> dict[str, Any]:
    outcome = _checked(name, runs)
    result = Comparison(name, runs[SPM], runs[BASELINE]).as_dict()
    setup = sum(n for route, n in result["spm_by_route"].items() if route in SETUP_ROUTES)
    asked = result["requests"] - setup
    result["method"] += "; answers of every run compared per Key Result (count, done, sum)"
    result["key_results"] = len(queries)
    result["counts"] = sum(1 for q in queries if q.get("want") != "items")
    result["matched_items"] = sum(int(v[0]) for v in outcome.values() if isinstance(v, list))
    result["setup_requests"] = setup
    result["query_requests"] = asked
    result["requests_per_key_result"] = round(asked / len(queries), 3)
    result["approximate_counts"] = runs[SPM][0].detail.get("approximate_counts", 0)
    minimum = floor(name, queries, outcome, runs[SPM][0].detail["distinct_matches"])
    result["min_requests"] = minimum
    why = ", ".join(f"{n} {route}" for route, n in result["spm_by_route"].items())
    result["targets"] = [
        target(
            f"<= 1 request per Key Result ({len(queries)}), the pull's setup aside",
            asked <= len(queries),
            f"{asked} requests besides {setup} of setup ({why}); the API's floor is {minimum}",
        ),
        target(f"at the API's floor ({minimum})", asked <= minimum, f"{asked} requests"),
    ]
    return result


def _measure(
    name: str,
    sandbox: Any,
    job: Mapping[str, Any],
    queries: list[Query],
    short: str,
    log: Callable[[str], None],
    spm_runs: int,
    baseline_runs: int,
) -> dict[str, Any]:
    def worker(function: str, **extra: Any) -> Callable[[], Run]:
        def measure() -> Run:
            kwargs = {"target": job, "queries": queries, **extra}
            return measured_run(f"bench.kr_queries:{function}", kwargs, [sandbox])

        return measure

    baseline_options = {"cloud": name.endswith("cloud")} if short == "jira" else {}
    sides = {
        SPM: worker(f"spm_{short}"),
        BASELINE: worker(f"baseline_{short}", **baseline_options),
    }
    log(f"  {name}: {len(queries)} Key Result queries")
    warm = warm_up(sides, log=log)  # fills the sandbox's cache of each side's renderings
    runs = round_robin(
        {SPM: (sides[SPM], spm_runs), BASELINE: (sides[BASELINE], baseline_runs)}, log=log
    )
    result = _result(name, runs, queries)
    result["warm_up_seconds"] = warm
    return result


def run(quick: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    jira_size, ado_size = QUICK_SIZES if quick else FULL_SIZES
    total = jira_size + ado_size
    portfolio: SeedPortfolio = generate_portfolio(total, jira_share=jira_size / total)
    kr_count = len(portfolio.key_results)
    latency = Faults(latency_ms=LATENCY_MS)
    spm_runs, baseline_runs = 3, 2
    results: dict[str, Any] = {}
    for flavour in ("cloud", "datacenter"):
        name = f"kr_queries_jira_{flavour}"
        with JiraSandbox(portfolio.jira, flavour=flavour, faults=latency) as jira:
            job = jira_target(jira, project_jql(portfolio.jira))
            queries = jira_queries(kr_count)
            results[name] = _measure(name, jira, job, queries, "jira", log, spm_runs, baseline_runs)
    name = "kr_queries_azure_devops"
    with AzureDevOpsSandbox(portfolio.azure_devops, faults=latency) as ado:
        queries = ado_queries(kr_count)
        results[name] = _measure(
            name, ado, ado_target(ado), queries, "ado", log, spm_runs, baseline_runs
        )
    for name, result in results.items():
        print_comparison(name, result, log)
        log(
            f"    {result['query_requests']} query requests for {result['key_results']} Key "
            f"Results ({result['requests_per_key_result']} each), {result['setup_requests']} "
            f"of setup; {result['matched_items']:,} items matched"
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    run(quick=args.quick)
    print(f"done in {math.ceil(time.perf_counter() - started)} s")


if __name__ == "__main__":
    main()
