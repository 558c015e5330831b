"""Benchmark: full sync of a portfolio (full mode 30,000 Jira Cloud + 20,000 Azure DevOps items,
quick mode 3,000 + 2,000) with 20 ms added latency per request.

spm-sync: the connector's `pull(None)` streamed into a fresh SQLite store (`upsert_items`), with
the default settings (4 workers). Baseline: `bench.baseline` (the `jira` library's paging of 100
with `*all` fields; WIQL + one `get_work_item` per id). Each tracker is measured on its own,
spm-sync and the baseline alternating; the portfolio row adds the two trackers up.

The request floor the APIs allow:
- Jira Cloud: serverInfo + field (2), then every issue with its fields: `search/jql` serves at
  most 100 issues a page when fields are asked for, and `issue/bulkfetch` takes at most 100 ids,
  so ceil(N/100) reads; the id-first path (what spm-sync does, so the bulk fetches can run in
  parallel) adds ceil(N/5000) id pages.
- Azure DevOps: discovery (1) + one `workitemtypes/{type}/states` read per work item type (the
  state categories) + ceil(N/20000) WIQL queries + ceil(N/200) `workitemsbatch` reads.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
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
from bench.harness import LATENCY_MS, Comparison, Run, alternate, measured_run, target
from bench.report import print_comparison
from connectors.azure_devops import AzureDevOpsConnector
from connectors.jira import JiraConnector
from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.generator import generate_portfolio
from connectors.sandbox.jira_server import JiraSandbox
from connectors.sandbox.server import Faults
from spm_sync.domain import WorkItem
from spm_sync.store import Store

FULL_SIZES = (30_000, 20_000)
QUICK_SIZES = (3_000, 2_000)


# -- measured in a worker --------------------------------------------------------------------
def spm_jira(target: Mapping[str, Any], db: str) -> dict[str, Any]:
    connector = JiraConnector(jira_settings(target), environ=jira_environ(target))
    return _pull_into_store(connector, db)


def spm_ado(target: Mapping[str, Any], db: str) -> dict[str, Any]:
    connector = AzureDevOpsConnector(
        ado_settings(target), environ=ado_environ(target), cache_dir=None
    )
    return _pull_into_store(connector, db)


def _pull_into_store(connector: JiraConnector | AzureDevOpsConnector, db: str) -> dict[str, Any]:
    """The sync itself; also splits its time into waiting for the pull and storing."""
    started = time.perf_counter()
    store = Store(f"sqlite:///{db}")
    pulling = _Stopwatch()
    try:
        counts = store.upsert_items(pulling.timed(connector.pull(None)))
    finally:
        connector.close()
        store.close()
    total = time.perf_counter() - started
    return {
        "items": counts.total,
        "stored": counts.inserted,
        "client_requests": connector.stats.requests,
        "warnings": len(connector.warnings),
        "pull_wait_seconds": round(pulling.seconds, 3),
        "store_seconds": round(total - pulling.seconds, 3),
    }


class _Stopwatch:
    """Time spent inside a generator's `next()`: for a streamed sync, waiting on the pull."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def timed(self, stream: Iterator[WorkItem]) -> Iterator[WorkItem]:
        while True:
            started = time.perf_counter()
            try:
                item = next(stream)
            except StopIteration:
                self.seconds += time.perf_counter() - started
                return
            self.seconds += time.perf_counter() - started
            yield item


# -- orchestration ---------------------------------------------------------------------------
def jira_floor(items: int) -> int:
    return 2 + math.ceil(items / 100)


def ado_floor(items: int, work_item_types: int) -> int:
    return 1 + work_item_types + math.ceil(items / 20_000) + math.ceil(items / 200)


def run(quick: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    jira_size, ado_size = QUICK_SIZES if quick else FULL_SIZES
    total = jira_size + ado_size
    portfolio = generate_portfolio(total, jira_share=jira_size / total)
    latency = Faults(latency_ms=LATENCY_MS)
    results: dict[str, Any] = {}
    with (
        JiraSandbox(portfolio.jira, faults=latency) as jira,
        AzureDevOpsSandbox(portfolio.azure_devops, faults=latency) as ado,
        tempfile.TemporaryDirectory(prefix="spm-bench-sync-") as scratch,
    ):
        databases = iter(Path(scratch, f"sync-{n}.db") for n in range(1000))
        jira_job = jira_target(jira, project_jql(portfolio.jira))
        ado_job = ado_target(ado)

        def spm(function: str, job: Mapping[str, Any], sandbox: Any) -> Callable[[], Run]:
            return lambda: measured_run(
                f"bench.full_sync:{function}",
                {"target": job, "db": str(next(databases))},
                [sandbox],
            )

        def base(function: str, job: Mapping[str, Any], sandbox: Any) -> Callable[[], Run]:
            return lambda: measured_run(f"bench.baseline:{function}", {"target": job}, [sandbox])

        log(f"  full sync, Jira Cloud, {len(portfolio.jira)} issues")
        jira_runs = alternate(
            spm("spm_jira", jira_job, jira),
            base("jira_full_sync", jira_job, jira),
            spm_runs=3,
            baseline_runs=2,
            log=log,
        )
        log(f"  full sync, Azure DevOps, {len(portfolio.azure_devops)} work items")
        ado_runs = alternate(
            spm("spm_ado", ado_job, ado),
            base("ado_full_sync", ado_job, ado),
            spm_runs=3 if quick else 2,
            baseline_runs=2 if quick else 1,
            log=log,
        )
    ado_types = len({item.type for item in portfolio.azure_devops})
    jira_result = _tracker_result(
        Comparison("full_sync_jira", *jira_runs), jira_size, jira_floor(jira_size)
    )
    ado_result = _tracker_result(
        Comparison("full_sync_azure_devops", *ado_runs), ado_size, ado_floor(ado_size, ado_types)
    )
    results["full_sync_jira"] = jira_result
    results["full_sync_azure_devops"] = ado_result
    results["full_sync"] = _portfolio_result(jira_result, ado_result)
    for name, result in results.items():
        print_comparison(name, result, log)
    return results


def _tracker_result(comparison: Comparison, expected: int, floor: int) -> dict[str, Any]:
    for run_ in (*comparison.spm, *comparison.baseline):
        if run_.items != expected:
            raise RuntimeError(f"{comparison.name}: a run read {run_.items} of {expected} items")
    result = comparison.as_dict()
    result["min_requests"] = floor
    result["targets"] = _targets(result)
    return result


def _portfolio_result(jira: Mapping[str, Any], ado: Mapping[str, Any]) -> dict[str, Any]:
    """Both trackers one after the other: sums of the per-tracker medians."""

    def total(key: str) -> float:
        return round(jira[key] + ado[key], 3)

    result: dict[str, Any] = {
        "items": jira["items"] + ado["items"],
        "requests": jira["requests"] + ado["requests"],
        "baseline_requests": jira["baseline_requests"] + ado["baseline_requests"],
        "seconds": total("seconds"),
        "baseline_seconds": total("baseline_seconds"),
        "peak_mb": max(jira["peak_mb"], ado["peak_mb"]),
        "baseline_peak_mb": max(jira["baseline_peak_mb"], ado["baseline_peak_mb"]),
        "min_requests": jira["min_requests"] + ado["min_requests"],
        "method": "sum of the per-tracker medians (trackers synced one after the other)",
    }
    result["speedup"] = round(result["baseline_seconds"] / result["seconds"], 2)
    result["request_ratio"] = round(result["baseline_requests"] / result["requests"], 2)
    result["targets"] = _targets(result)
    return result


def _targets(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    allowed = 1.1 * result["min_requests"]
    speedup = result["speedup"] or 0.0
    return [
        target(
            f"requests <= 1.1 x the API floor ({result['min_requests']}): <= {allowed:.0f}",
            result["requests"] <= allowed,
            f"{result['requests']} requests",
        ),
        target(
            ">= 5x faster than the baseline",
            speedup >= 5.0,
            f"{speedup}x",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3,000 + 2,000 items")
    args = parser.parse_args()
    run(quick=args.quick)


if __name__ == "__main__":
    main()
