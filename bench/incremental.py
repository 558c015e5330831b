"""Benchmark: the incremental sync of a portfolio where nothing changed since the last sync
(full mode 30,000 Jira Cloud + 20,000 Azure DevOps items, quick mode 3,000 + 2,000; 20 ms
latency). Target: at most 3 requests for Jira and 2 for Azure DevOps.

Two windows are measured, each with a fresh connector (a new run):
- `since = watermark - 10 min`: what `spm_sync.pull` asks for after a full sync (the watermark
  is the newest `updated` stored; 10 minutes is the default `overlap_minutes`). The items in the
  overlap are read again by design, so this is the realistic nightly run;
- `since = watermark + 1 s`: nothing at all is newer (the connector's own floor; Jira still
  returns the items of the last minute, because relative JQL dates have minute precision and
  the connector widens the window by a minute, see `JiraConnector._updated_since`).
The baseline asks the same windows with the client libraries (a relative `updated >= "-Nm"` JQL
with `maxResults=False`; WIQL on `[System.ChangedDate]` with timePrecision, then
`get_work_item` per id).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
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
from bench.harness import LATENCY_MS, Comparison, alternate, measured_run, target
from bench.report import print_comparison
from connectors.azure_devops import AzureDevOpsConnector
from connectors.jira import JiraConnector
from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.generator import generate_portfolio
from connectors.sandbox.jira_server import JiraSandbox
from connectors.sandbox.portfolio import SeedItem
from connectors.sandbox.server import Faults

OVERLAP = timedelta(minutes=10)
AFTER = timedelta(seconds=1)
LIMITS = {"jira": 3, "azure_devops": 2}


# -- measured in a worker --------------------------------------------------------------------
def spm_jira(target: Mapping[str, Any], since: str) -> dict[str, Any]:
    connector = JiraConnector(jira_settings(target), environ=jira_environ(target))
    try:
        items = sum(1 for _ in connector.pull(datetime.fromisoformat(since)))
    finally:
        connector.close()
    return {"items": items, "client_requests": connector.stats.requests}


def spm_ado(target: Mapping[str, Any], since: str) -> dict[str, Any]:
    connector = AzureDevOpsConnector(
        ado_settings(target), environ=ado_environ(target), cache_dir=None
    )
    try:
        items = sum(1 for _ in connector.pull(datetime.fromisoformat(since)))
    finally:
        connector.close()
    return {"items": items, "client_requests": connector.stats.requests}


def baseline_jira(target: Mapping[str, Any], since: str) -> dict[str, Any]:
    from bench.baseline import jira_incremental

    elapsed = datetime.now(UTC) - datetime.fromisoformat(since)
    return jira_incremental(target, math.ceil(elapsed.total_seconds() / 60))


def baseline_ado(target: Mapping[str, Any], since: str) -> dict[str, Any]:
    from bench.baseline import ado_incremental

    return ado_incremental(target, datetime.fromisoformat(since).strftime("%Y-%m-%dT%H:%M:%SZ"))


# -- orchestration ---------------------------------------------------------------------------
def watermark(items: list[SeedItem]) -> datetime:
    """What a full sync stores as the watermark: the newest `updated` it pulled."""
    return max(item.updated for item in items)


def expected_in_window(items: list[SeedItem], since: datetime) -> int:
    return sum(1 for item in items if item.updated >= since)


def run(quick: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    jira_size, ado_size = QUICK_SIZES if quick else FULL_SIZES
    total = jira_size + ado_size
    portfolio = generate_portfolio(total, jira_share=jira_size / total)
    latency = Faults(latency_ms=LATENCY_MS)
    results: dict[str, Any] = {}
    with (
        JiraSandbox(portfolio.jira, faults=latency) as jira,
        AzureDevOpsSandbox(portfolio.azure_devops, faults=latency) as ado,
    ):
        trackers = (
            ("jira", jira, jira_target(jira, project_jql(portfolio.jira)), portfolio.jira),
            ("azure_devops", ado, ado_target(ado), portfolio.azure_devops),
        )
        for tracker, sandbox, job, seeds in trackers:
            newest = watermark(seeds)
            for window, since in (("overlap", newest - OVERLAP), ("none", newest + AFTER)):
                name = f"incremental_{tracker}_{window}"
                log(f"  {name}: since {since.isoformat()}")
                short = "jira" if tracker == "jira" else "ado"
                kwargs = {"target": job, "since": since.isoformat()}
                spm_runs, baseline_runs = alternate(
                    lambda short=short, kwargs=kwargs, sandbox=sandbox: measured_run(
                        f"bench.incremental:spm_{short}", kwargs, [sandbox]
                    ),
                    lambda short=short, kwargs=kwargs, sandbox=sandbox: measured_run(
                        f"bench.incremental:baseline_{short}", kwargs, [sandbox]
                    ),
                    spm_runs=3,
                    baseline_runs=2,
                    log=log,
                )
                comparison = Comparison(name, spm_runs, baseline_runs)
                results[name] = _result(comparison, tracker, expected_in_window(seeds, since))
                print_comparison(name, results[name], log)
    return results


def _result(comparison: Comparison, tracker: str, expected: int) -> dict[str, Any]:
    for run_ in (*comparison.spm, *comparison.baseline):
        if run_.items < expected:  # Jira's minute-precision window may return a few more
            raise RuntimeError(f"{comparison.name}: a run read {run_.items} of {expected} items")
    result = comparison.as_dict()
    result["changed_items_in_window"] = expected
    result["baseline_items"] = comparison.baseline[0].items
    limit = LIMITS[tracker]
    worst = max(run_.requests for run_ in comparison.spm)
    why = f"{worst} requests: " + ", ".join(
        f"{n} {route}" for route, n in result["spm_by_route"].items()
    )
    result["targets"] = [target(f"<= {limit} requests", worst <= limit, why)]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3,000 + 2,000 items")
    run(quick=parser.parse_args().quick)


if __name__ == "__main__":
    main()
