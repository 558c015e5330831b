"""Benchmark: the incremental sync of a portfolio where nothing changed since the last sync
(full mode 30,000 Jira Cloud + 20,000 Azure DevOps items, quick mode 3,000 + 2,000; 20 ms
latency). Targets: at most 3 requests per connection (issue 8), and at most 2 for Azure DevOps
(issue 5).

Two windows are measured, each with a fresh connector (a new run):
- `since = watermark - 10 min`: what `spm_sync.pipeline.pull` asks for after a full sync (the
  watermark is the newest `updated` stored; 10 minutes is the default `overlap_minutes`). The
  items in the overlap are read again by design, so this is the realistic nightly run;
- `since = watermark + 1 s`: nothing at all is newer (the connector's own floor; Jira still
  returns the items of the last minute, because relative JQL dates have minute precision and
  the connector widens the window by a minute, see `JiraConnector._updated_since`).
The baseline asks the same windows with the client libraries (a relative `updated >= "-Nm"` JQL
with `maxResults=False`; WIQL on `[System.ChangedDate]` with timePrecision, then
`get_work_item` per id).

Azure DevOps is measured twice per window: with a cold discovery cache (the first run on a
machine: one `OPTIONS` for the resource locations) and with a warm one (every later run:
spm-sync keeps the cache on disk for 7 days, where the library alone trusts it 12 hours; see
`connectors/azure_devops_client.py`). Both sides get the same cache in each case. Jira has no
such cache: serverInfo and field are read on every run.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
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
from bench.harness import LATENCY_MS, Comparison, Run, alternate, measured_run, target
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
LIMITS = {
    "jira": ((3, "<= 3 requests per connection (issue 8)"),),
    "azure_devops": (
        (3, "<= 3 requests per connection (issue 8)"),
        (2, "<= 2 requests (issue 5)"),
    ),
}


# -- measured in a worker --------------------------------------------------------------------
def spm_jira(target: Mapping[str, Any], since: str) -> dict[str, Any]:
    connector = JiraConnector(jira_settings(target), environ=jira_environ(target))
    try:
        items = sum(1 for _ in connector.pull(datetime.fromisoformat(since)))
    finally:
        connector.close()
    return {"items": items, "client_requests": connector.stats.requests}


def spm_ado(target: Mapping[str, Any], since: str, cache_dir: str | None = None) -> dict[str, Any]:
    """`cache_dir` None: the discovery cache is cold (in memory only, as on a first run)."""
    connector = AzureDevOpsConnector(
        ado_settings(target),
        environ=ado_environ(target),
        cache_dir=None if cache_dir is None else Path(cache_dir),
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
        tempfile.TemporaryDirectory(prefix="spm-bench-discovery-") as warm_cache,
    ):
        trackers = (
            ("jira", jira, jira_target(jira, project_jql(portfolio.jira)), portfolio.jira, ""),
            ("azure_devops", ado, ado_target(ado), portfolio.azure_devops, ""),
            ("azure_devops", ado, ado_target(ado), portfolio.azure_devops, warm_cache),
        )
        for tracker, sandbox, job, seeds, cache in trackers:
            newest = watermark(seeds)
            for window, since in (("overlap", newest - OVERLAP), ("none", newest + AFTER)):
                suffix = "" if tracker == "jira" or cache else "_cold_cache"
                name = f"incremental_{tracker}_{window}{suffix}"
                log(f"  {name}: since {since.isoformat()}")
                spm, baseline = _sides(tracker, job, since, sandbox, cache)
                if cache and window == "overlap":
                    spm(), baseline()  # unmeasured: they fill the discovery cache on disk
                spm_runs, baseline_runs = alternate(
                    spm, baseline, spm_runs=3, baseline_runs=2, log=log
                )
                comparison = Comparison(name, spm_runs, baseline_runs)
                results[name] = _result(comparison, tracker, expected_in_window(seeds, since))
                results[name]["discovery_cache"] = (
                    "none (Jira)" if tracker == "jira" else "warm" if cache else "cold"
                )
                print_comparison(name, results[name], log)
    return results


def _sides(
    tracker: str, job: Mapping[str, Any], since: datetime, sandbox: Any, cache: str
) -> tuple[Callable[[], Run], Callable[[], Run]]:
    """spm-sync's and the baseline's measured run; `cache` a warm discovery cache or ""."""
    short = "jira" if tracker == "jira" else "ado"
    kwargs: dict[str, Any] = {"target": job, "since": since.isoformat()}
    spm_kwargs = {**kwargs, "cache_dir": cache} if cache else kwargs
    env = {"AZURE_DEVOPS_CACHE_DIR": cache} if cache else None

    def spm() -> Run:
        return measured_run(f"bench.incremental:spm_{short}", spm_kwargs, [sandbox], env=env)

    def baseline() -> Run:
        return measured_run(f"bench.incremental:baseline_{short}", kwargs, [sandbox], env=env)

    return spm, baseline


def _result(comparison: Comparison, tracker: str, expected: int) -> dict[str, Any]:
    for run_ in (*comparison.spm, *comparison.baseline):
        if run_.items < expected:  # Jira's minute-precision window may return a few more
            raise RuntimeError(f"{comparison.name}: a run read {run_.items} of {expected} items")
    result = comparison.as_dict()
    result["changed_items_in_window"] = expected
    result["baseline_items"] = comparison.baseline[0].items
    worst = max(run_.requests for run_ in comparison.spm)
    why = f"{worst} requests: " + ", ".join(
        f"{n} {route}" for route, n in result["spm_by_route"].items()
    )
    result["targets"] = [
        target(description, worst <= limit, why) for limit, description in LIMITS[tracker]
    ]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3,000 + 2,000 items")
    run(quick=parser.parse_args().quick)


if __name__ == "__main__":
    main()
