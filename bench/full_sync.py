"""Benchmark: full sync of a portfolio (full mode 30,000 Jira Cloud + 20,000 Azure DevOps items,
quick mode 3,000 + 2,000) with 20 ms added latency per request.

Two spm-sync measurements per tracker against one baseline, so like is compared with like:
- `full_sync_<tracker>`: the connector's `pull(None)` materialising every `WorkItem` in a list,
  against the baseline materialising its library objects in a list (the speed target);
- `full_sync_<tracker>_with_store`: the pipeline's pull stage, the same pull streamed into a
  fresh SQLite store (`upsert_items`); the baseline writes nothing, so this row's speed-up is
  lower by the cost of the writes (kept apart in `store_seconds`).
Both use the default settings (4 workers). Baseline: `bench.baseline` (the `jira` library's
paging of 100 with `*all` fields; WIQL + one `get_work_item` per id). The three alternate; one
unmeasured warm-up run per kind of request fills the sandbox's cache of encoded items first
(`bench.harness.warm_up`). The portfolio rows add the two trackers up.

The request floor the APIs allow:
- Jira Cloud: serverInfo + field (2), then every issue with its fields: `search/jql` serves at
  most 100 issues a page when fields are asked for, and `issue/bulkfetch` takes at most 100 ids,
  so ceil(N/100) reads; the id-first path (what spm-sync does, so the bulk fetches can run in
  parallel) adds ceil(N/5000) id pages.
- Azure DevOps: discovery (1) + ceil(N/20000) WIQL queries + ceil(N/200) `workitemsbatch` reads
  + one `workitemtypes/{type}/states` read per type with a custom state (states outside the
  system states of Microsoft's processes, whose categories are fixed; none in the portfolio).
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
from bench.harness import LATENCY_MS, Comparison, Run, measured_run, round_robin, target, warm_up
from bench.report import print_comparison
from connectors.azure_devops import AzureDevOpsConnector
from connectors.azure_devops_mapping import state_category
from connectors.jira import JiraConnector
from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.generator import generate_portfolio
from connectors.sandbox.jira_server import JiraSandbox
from connectors.sandbox.portfolio import SeedItem
from connectors.sandbox.server import Faults
from spm_sync.core.domain import WorkItem
from spm_sync.store import Store

FULL_SIZES = (30_000, 20_000)
QUICK_SIZES = (3_000, 2_000)
Connector = JiraConnector | AzureDevOpsConnector


# -- measured in a worker --------------------------------------------------------------------
def _jira(target: Mapping[str, Any]) -> JiraConnector:
    return JiraConnector(jira_settings(target), environ=jira_environ(target))


def _ado(target: Mapping[str, Any]) -> AzureDevOpsConnector:
    return AzureDevOpsConnector(ado_settings(target), environ=ado_environ(target), cache_dir=None)


def spm_jira(target: Mapping[str, Any]) -> dict[str, Any]:
    return _pull_into_memory(_jira(target))


def spm_ado(target: Mapping[str, Any]) -> dict[str, Any]:
    return _pull_into_memory(_ado(target))


def spm_jira_store(target: Mapping[str, Any], db: str) -> dict[str, Any]:
    return _pull_into_store(_jira(target), db)


def spm_ado_store(target: Mapping[str, Any], db: str) -> dict[str, Any]:
    return _pull_into_store(_ado(target), db)


def _pull_into_memory(connector: Connector) -> dict[str, Any]:
    """Every item as a `WorkItem` in a list, as the baseline keeps its objects in a list."""
    try:
        items = list(connector.pull(None))
    finally:
        connector.close()
    return {
        "items": len({item.key for item in items}),
        "client_requests": connector.stats.requests,
        "warnings": len(connector.warnings),
    }


def _pull_into_store(connector: Connector, db: str) -> dict[str, Any]:
    """The pull stage; also splits its time into waiting for the pull and storing."""
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
IN_MEMORY = "spm-sync, items in a list"
INTO_STORE = "spm-sync, items into SQLite"
BASELINE = "baseline"


def jira_floor(items: int) -> int:
    return 2 + math.ceil(items / 100)


def ado_floor(items: int, custom_state_types: int) -> int:
    return 1 + custom_state_types + math.ceil(items / 20_000) + math.ceil(items / 200)


def custom_state_types(items: list[SeedItem]) -> int:
    """Work item types with a state the system table does not know (each costs a read)."""
    return len({item.type for item in items if state_category(item.type, item.status, {}) is None})


def run(quick: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    jira_size, ado_size = QUICK_SIZES if quick else FULL_SIZES
    total = jira_size + ado_size
    portfolio = generate_portfolio(total, jira_share=jira_size / total)
    latency = Faults(latency_ms=LATENCY_MS)
    with (
        JiraSandbox(portfolio.jira, faults=latency) as jira,
        AzureDevOpsSandbox(portfolio.azure_devops, faults=latency) as ado,
        tempfile.TemporaryDirectory(prefix="spm-bench-sync-") as scratch,
    ):
        databases = iter(Path(scratch, f"sync-{n}.db") for n in range(1000))

        def sides(short: str, job: Mapping[str, Any], sandbox: Any) -> dict[str, Callable[[], Run]]:
            def worker(function: str, **kwargs: Any) -> Callable[[], Run]:
                def measure() -> Run:
                    values = {key: value() for key, value in kwargs.items()}
                    return measured_run(function, {"target": job, **values}, [sandbox])

                return measure

            baseline = "jira_full_sync" if short == "jira" else "ado_full_sync"
            return {
                IN_MEMORY: worker(f"bench.full_sync:spm_{short}"),
                INTO_STORE: worker(
                    f"bench.full_sync:spm_{short}_store", db=lambda: str(next(databases))
                ),
                BASELINE: worker(f"bench.baseline:{baseline}"),
            }

        jira_job = jira_target(jira, project_jql(portfolio.jira))
        log(f"  full sync, Jira Cloud, {len(portfolio.jira)} issues")
        jira_sides = sides("jira", jira_job, jira)
        # The baseline asks other fields (`*all`, API v2) than spm-sync: a warm-up each.
        jira_warm = warm_up({k: jira_sides[k] for k in (IN_MEMORY, BASELINE)}, log=log)
        jira_runs = round_robin(
            {IN_MEMORY: (jira_sides[IN_MEMORY], 3), INTO_STORE: (jira_sides[INTO_STORE], 3),
             BASELINE: (jira_sides[BASELINE], 2)},
            log=log,
        )  # fmt: skip
        log(f"  full sync, Azure DevOps, {len(portfolio.azure_devops)} work items")
        ado_sides = sides("ado", ado_target(ado), ado)
        # The per-item reads of the baseline (`$expand=relations`) are the same renderings as
        # spm-sync's batches, so one warm-up serves both (a baseline warm-up would take 8 min).
        ado_warm = warm_up({IN_MEMORY: ado_sides[IN_MEMORY]}, log=log)
        spm_runs, baseline_runs = (3, 2) if quick else (2, 1)
        ado_runs = round_robin(
            {IN_MEMORY: (ado_sides[IN_MEMORY], spm_runs),
             INTO_STORE: (ado_sides[INTO_STORE], spm_runs),
             BASELINE: (ado_sides[BASELINE], baseline_runs)},
            log=log,
        )  # fmt: skip
    floors = {
        "jira": jira_floor(jira_size),
        "azure_devops": ado_floor(ado_size, custom_state_types(portfolio.azure_devops)),
    }
    results: dict[str, Any] = {}
    for tracker, runs, warm, size in (
        ("jira", jira_runs, jira_warm, jira_size),
        ("azure_devops", ado_runs, ado_warm, ado_size),
    ):
        for suffix, side in (("", IN_MEMORY), ("_with_store", INTO_STORE)):
            name = f"full_sync_{tracker}{suffix}"
            comparison = Comparison(name, runs[side], runs[BASELINE])
            results[name] = _tracker_result(comparison, size, floors[tracker], warm)
    for suffix in ("", "_with_store"):
        results[f"full_sync{suffix}"] = _portfolio_result(
            results[f"full_sync_jira{suffix}"], results[f"full_sync_azure_devops{suffix}"]
        )
    for name, result in results.items():
        print_comparison(name, result, log)
    return results


MEASURES = {
    False: "spm-sync: connector pull() into a list of WorkItems; baseline: its library objects "
    "in a list (like for like)",
    True: "spm-sync: the pull stage, connector pull() streamed into a fresh SQLite store; "
    "baseline: its library objects in a list (it writes nothing)",
}


def _tracker_result(
    comparison: Comparison, expected: int, floor: int, warm_up_seconds: Mapping[str, float]
) -> dict[str, Any]:
    for run_ in (*comparison.spm, *comparison.baseline):
        if run_.items != expected:
            raise RuntimeError(f"{comparison.name}: a run read {run_.items} of {expected} items")
    stored = comparison.name.endswith("_with_store")
    result = comparison.as_dict()
    result["measures"] = MEASURES[stored]
    result["min_requests"] = floor
    result["warm_up_seconds"] = dict(warm_up_seconds)
    if stored:
        result["store_seconds"] = [run_.detail.get("store_seconds") for run_ in comparison.spm]
    result["targets"] = _targets(result, speed_target=not stored)
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
        "measures": jira["measures"],
        "method": "sum of the per-tracker medians (trackers synced one after the other)",
    }
    result["speedup"] = round(result["baseline_seconds"] / result["seconds"], 2)
    result["request_ratio"] = round(result["baseline_requests"] / result["requests"], 2)
    stored = "into a fresh SQLite store" in str(jira["measures"])
    result["targets"] = _targets(result, speed_target=not stored)
    return result


def _targets(result: Mapping[str, Any], *, speed_target: bool) -> list[dict[str, Any]]:
    """The request target everywhere; the speed target on the like-for-like rows (the rows
    with the store show their speed-up, with the writes the baseline does not make)."""
    allowed = 1.1 * result["min_requests"]
    speedup = result["speedup"] or 0.0
    targets = [
        target(
            f"requests <= 1.1 x the API floor ({result['min_requests']}): <= {allowed:.0f}",
            result["requests"] <= allowed,
            f"{result['requests']} requests",
        )
    ]
    if speed_target:
        targets.append(target(">= 5x faster than the baseline", speedup >= 5.0, f"{speedup}x"))
    return targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3,000 + 2,000 items")
    args = parser.parse_args()
    run(quick=args.quick)


if __name__ == "__main__":
    main()
