"""Benchmark: starting each sandbox tracker with 50,000 items (both modes). Targets: under
10 s and under 500 MB.

Each start runs in a fresh worker: generate the seeded items (timed apart), then build the
sandbox, start its HTTP server and wait for its first answer (Jira `serverInfo`, Azure DevOps
`OPTIONS _apis`). `rss_mb` is the worker's resident memory with the sandbox up (the
interpreter, the generated seed items and the sandbox); `sandbox_mb` is what building and
starting the sandbox added to the RSS the worker had just before.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import requests

from bench.harness import measured_run, median_run, target
from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.generator import generate_portfolio
from connectors.sandbox.jira_server import JiraSandbox

SIZE = 50_000
RUNS = 3


def start(tracker: str, size: int) -> dict[str, Any]:
    from bench.worker import current_rss_mb, peak_rss_mb

    began = time.perf_counter()
    portfolio = generate_portfolio(size, jira_share=1.0 if tracker == "jira" else 0.0)
    items = portfolio.jira if tracker == "jira" else portfolio.azure_devops
    generated = time.perf_counter()
    before = current_rss_mb()
    if tracker == "jira":
        sandbox: JiraSandbox | AzureDevOpsSandbox = JiraSandbox(items)
        sandbox.start()
        answer = requests.get(f"{sandbox.url}/rest/api/2/serverInfo", auth=sandbox.basic_auth)
    else:
        sandbox = AzureDevOpsSandbox(items)
        sandbox.start()
        answer = requests.options(f"{sandbox.organization_url}/_apis", auth=sandbox.basic_auth)
    answer.raise_for_status()
    started = time.perf_counter()
    rss = current_rss_mb()
    sandbox.stop()
    return {
        "items": len(items),
        "generate_seconds": round(generated - began, 3),
        "start_seconds": round(started - generated, 3),
        "rss_mb": round(rss, 1),
        "sandbox_mb": round(rss - before, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def run(quick: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    """The same in both modes: a start takes seconds."""
    results: dict[str, Any] = {}
    for tracker in ("jira", "azure_devops"):
        runs = [
            measured_run("bench.sandbox_start:start", {"tracker": tracker, "size": SIZE}, [])
            for _ in range(RUNS)
        ]
        middle = dict(median_run(runs, key=lambda run: run.detail["start_seconds"]).detail)
        rss = max(run.detail["rss_mb"] for run in runs)
        seconds = middle["start_seconds"]
        name = f"sandbox_start_{tracker}"
        results[name] = {
            "items": middle["items"],
            "requests": 1,
            "baseline_requests": None,
            "seconds": seconds,
            "baseline_seconds": None,
            "peak_mb": max(run.detail["peak_rss_mb"] for run in runs),
            "rss_mb": rss,
            "sandbox_mb": max(run.detail["sandbox_mb"] for run in runs),
            "generate_seconds": middle["generate_seconds"],
            "method": f"median start of {RUNS} fresh workers (build + start + first answer); "
            "rss_mb = worker RSS with the sandbox up, the largest of the runs",
            "runs": {"start_seconds": [run.detail["start_seconds"] for run in runs]},
            "targets": [
                target("start < 10 s", seconds < 10, f"{seconds} s"),
                target("RSS < 500 MB", rss < 500, f"{rss} MB"),
            ],
        }
        log(
            f"  {name}: {SIZE:,} items, start {seconds} s (generation "
            f"{middle['generate_seconds']} s apart), RSS {rss} MB "
            f"(sandbox {results[name]['sandbox_mb']} MB)"
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="same as the full run")
    print(json.dumps(run(quick=parser.parse_args().quick), indent=2))


if __name__ == "__main__":
    main()
