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

- spm-sync: the portfolio stage's queries (`spm_sync.pipeline.portfolio_queries.ask`) for 200 Key
  Results (a count measures a count, a share of done items `share_done`, a sum of "Job Size" /
  "Effort" `sum`), one connector's `run_queries` batch, default settings (4 workers), after the
  connector's pull of the whole scope as a pipeline run makes it: `share_done` and the sums
  (a WSJF input, "Job Size" / "Effort") ask for the keys of their matches and read done-ness
  and values from the pulled items (`spm_sync.pipeline.portfolio_keys`); matches outside the pulled
  items would cost one follow-up query (none here: the scope is every project). The pull's
  requests and seconds are the pipeline's pull, not the queries': they are reported
  (`pull_requests`) and left out of `requests` and `seconds`; the peak memory includes the
  pulled items, which the stage holds in a pipeline run too.
- The baseline, plain library code as a user would write it per Key Result (`bench.baseline`
  style): Jira `search_issues(jql, maxResults=False)` (Data Center; on Cloud, where `/search`
  is gone, `enhanced_search_issues(jql, maxResults=False)`), fetching every matching issue
  with all its fields, then counting, summing, or counting the done ones; the field's id looked
  up once with `fields()`. Azure DevOps: `query_by_wiql` per Key Result (a count is the number
  of ids), then for shares and sums `get_work_items(ids)` per 200 ids.

Every run's answers are reduced to (count, done, sum) per Key Result and compared with the
other side's (and Jira Cloud's approximate counts with the exact ones): a difference fails the
benchmark. Requests are what the sandbox served (the connector's count of the pull and the
queries must equal it); the pull has made the setup requests (Jira serverInfo and field list,
the Azure DevOps discovery) before the queries, so `setup_requests` is 0.
"""

from __future__ import annotations

import argparse
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bench.connections import (
    ado_target,
    jira_target,
    project_jql,
)
from bench.full_sync import FULL_SIZES, QUICK_SIZES
from bench.harness import (
    LATENCY_MS,
    Comparison,
    Run,
    measured_run,
    ratio,
    round_robin,
    target,
    warm_up,
)
from bench.kr_query_mix import Query, ado_queries, jira_queries
from bench.kr_query_stage import HALF_AREAS, HALF_PROJECTS, Outcome
from bench.report import print_comparison
from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.generator import generate_portfolio
from connectors.sandbox.jira_server import JiraSandbox
from connectors.sandbox.portfolio import SeedPortfolio
from connectors.sandbox.server import Faults
from connectors.values import number_or_problem

KEY_RESULTS = 200
HALF = "_half_scope"
SPM, BASELINE = "spm-sync", "baseline"


# -- the baseline, measured in a worker ------------------------------------------------------
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


def floor(
    name: str, wants: Mapping[str, str], outcome: Outcome, read: int, followed_up: int
) -> int:
    """The fewest requests the API allows for the queries as asked (the pull aside): one per
    count; per keys query one per page of its keys (Jira Cloud 5,000, Data Center 1,000; Azure
    DevOps one WIQL); per items query one per page of its matches (Jira Cloud 100 with fields,
    Data Center 1,000; Azure DevOps one WIQL, the matches of all items queries read together
    200 a request: `read` of them); the matches outside the pulled items read by `key in` /
    `[System.Id] IN` texts of at most 1,000 keys."""
    ado = "azure_devops" in name
    keys_page, items_page = (5000, 100) if "cloud" in name else (1000, 1000)
    total = 0
    for ident, want in wants.items():
        found = outcome[ident]
        assert isinstance(found, list)
        if want == "count" or ado:
            total += 1
        else:
            total += max(1, math.ceil(found[0] / (keys_page if want == "keys" else items_page)))
    chunks = [min(1000, followed_up - start) for start in range(0, followed_up, 1000)]
    if ado:
        total += math.ceil(read / 200) + len(chunks) + math.ceil(followed_up / 200)
    else:
        total += sum(math.ceil(chunk / items_page) for chunk in chunks)
    return total


def _result(name: str, runs: Mapping[str, list[Run]], queries: Sequence[Query]) -> dict[str, Any]:
    outcome = _checked(name, runs)
    result = Comparison(name, runs[SPM], runs[BASELINE]).as_dict()
    detail = runs[SPM][0].detail
    pulls = {run_.detail["pull_requests"] for run_ in runs[SPM]}
    asked_runs = {run_.requests - run_.detail["pull_requests"] for run_ in runs[SPM]}
    if len(asked_runs) != 1:
        raise RuntimeError(f"{name}: the query requests differ between runs: {asked_runs}")
    (asked,) = asked_runs
    result["requests"] = asked
    result["request_ratio"] = ratio(result["baseline_requests"], asked)
    result["pull_requests"] = sorted(pulls)[0]
    result["spm_by_route"] = detail["query_by_endpoint"]
    result["method"] += (
        "; spm-sync: the portfolio stage's queries after the connector's pull, whose requests "
        "(pull_requests) and seconds are left out; answers of every run compared per Key "
        "Result (count, done, sum)"
    )
    wants = detail["wants"]
    result["key_results"] = len(queries)
    result["counts"] = sum(1 for q in queries if q.get("want") != "items")
    result["asked"] = dict(sorted(Counter(wants.values()).items()))
    result["matched_items"] = sum(int(v[0]) for v in outcome.values() if isinstance(v, list))
    result["followed_up_matches"] = detail["followed_up_matches"]
    result["setup_requests"] = 0
    result["query_requests"] = asked
    result["requests_per_key_result"] = round(asked / len(queries), 3)
    result["approximate_counts"] = detail.get("approximate_counts", 0)
    minimum = floor(
        name, wants, outcome, detail["items_query_matches"], detail["followed_up_matches"]
    )
    result["min_requests"] = minimum
    why = ", ".join(f"{n} {route}" for route, n in result["spm_by_route"].items())
    result["targets"] = [
        target(
            f"<= 1 request per Key Result ({len(queries)}), the pull aside",
            asked <= len(queries),
            f"{asked} requests ({why}); the API's floor is {minimum}",
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
    baseline: list[Run] | None = None,
) -> tuple[dict[str, Any], list[Run]]:
    """The entry of `name` and the baseline's runs; given `baseline` (the same queries on the
    same sandbox), only spm-sync runs."""

    def worker(function: str, **extra: Any) -> Callable[[], Run]:
        def measure() -> Run:
            kwargs = {"target": job, "queries": queries, **extra}
            return measured_run(function, kwargs, [sandbox])

        return measure

    baseline_options = {"cloud": "cloud" in name} if short == "jira" else {}
    sides = {SPM: worker(f"bench.kr_query_stage:spm_{short}")}
    if baseline is None:
        sides[BASELINE] = worker(f"bench.kr_queries:baseline_{short}", **baseline_options)
    log(f"  {name}: {len(queries)} Key Result queries")
    warm = warm_up(sides, log=log)  # fills the sandbox's cache of each side's renderings
    counts = {SPM: spm_runs, BASELINE: baseline_runs}
    runs = round_robin({side: (run_, counts[side]) for side, run_ in sides.items()}, log=log)
    if baseline is not None:
        runs[BASELINE] = baseline
    result = _result(name, runs, queries)
    result["warm_up_seconds"] = warm
    return result, runs[BASELINE]


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
            results[name], baseline = _measure(
                name, jira, job, queries, "jira", log, spm_runs, baseline_runs
            )
            if flavour == "cloud":
                half = jira_target(jira, f"project in ({', '.join(HALF_PROJECTS)})")
                results[f"{name}{HALF}"], _ = _measure(
                    f"{name}{HALF}", jira, half, queries, "jira", log, 2, 0, baseline
                )
    name = "kr_queries_azure_devops"
    with AzureDevOpsSandbox(portfolio.azure_devops, faults=latency) as ado:
        queries = ado_queries(kr_count)
        job = ado_target(ado)
        results[name], baseline = _measure(
            name, ado, job, queries, "ado", log, spm_runs, baseline_runs
        )
        half = {**job, "area_paths": [f"Portfolio\\{area}" for area in HALF_AREAS]}
        results[f"{name}{HALF}"], _ = _measure(
            f"{name}{HALF}", ado, half, queries, "ado", log, 2, 0, baseline
        )
    for name, result in results.items():
        print_comparison(name, result, log)
        log(
            f"    {result['query_requests']} query requests for {result['key_results']} Key "
            f"Results ({result['requests_per_key_result']} each; asked {result['asked']}), "
            f"{result['pull_requests']} for the pull before them; {result['matched_items']:,} "
            f"items matched, {result['followed_up_matches']:,} read outside the pulled items"
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
