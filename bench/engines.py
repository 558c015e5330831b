"""Benchmark: alignment + WSJF + planning alone (no HTTP) on a stored portfolio of 200,000
items (quick mode 50,000), 60% Jira and 40% Azure DevOps. Targets: engines under 5 s, peak
memory under 1 GB.

Setup (one worker): the generated portfolio, converted to `WorkItem`s (`bench.portfolio`), is
streamed into a fresh SQLite store; its time and peak are recorded as `store_write`.
Measured (three workers, median): `Store.load_items()` (timed on its own), then what
`spm_sync.pipeline.analysis.analyse` runs on them: `align`, `score_items`, `plan_writes` with every
write-back switched on (score, cost of delay, rank, priority bands, orphan label) and the
ranks in shuffled order, the planner's worst case.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import Run, measured_run, median_run, target
from bench.portfolio import (
    alignment_rules,
    key_results,
    objectives,
    work_items,
    write_back_settings,
)
from connectors.sandbox.generator import generate_portfolio
from spm_sync.core.domain import KeyResult, Level, Objective
from spm_sync.engines.alignment import align
from spm_sync.engines.planning import plan_writes
from spm_sync.engines.wsjf import WsjfRules, score_items
from spm_sync.store import Store

FULL_SIZE = 200_000
QUICK_SIZE = 50_000
OKR_FILE = "okrs.json"


# -- measured in a worker --------------------------------------------------------------------
def build_store(size: int, folder: str) -> dict[str, Any]:
    portfolio = generate_portfolio(size, jira_share=0.6)
    okrs = {
        "objectives": [[o.id, o.title, o.owner, o.period] for o in objectives(portfolio)],
        "key_results": [
            [kr.id, kr.objective_id, kr.title, kr.target, kr.current, list(kr.aliases)]
            for kr in key_results(portfolio)
        ],
    }
    Path(folder, OKR_FILE).write_text(json.dumps(okrs), encoding="utf-8")
    store = Store(_url(folder))
    try:
        counts = store.upsert_items(work_items(portfolio))
    finally:
        store.close()
    return {"items": counts.total}


def run_engines(folder: str) -> dict[str, Any]:
    okrs = json.loads(Path(folder, OKR_FILE).read_text(encoding="utf-8"))
    krs = [KeyResult(a, b, c, d, e, aliases=tuple(f)) for a, b, c, d, e, f in okrs["key_results"]]
    goals = [Objective(*row) for row in okrs["objectives"]]
    store = Store(_url(folder))
    started = time.perf_counter()
    items = store.load_items()
    loaded = time.perf_counter()
    from bench.worker import current_rss_mb

    rss_loaded = current_rss_mb()
    alignment = align(items, krs, alignment_rules(), goals)
    aligned = time.perf_counter()
    # Epics and features, as when these figures were first taken (the default is epics).
    scores = score_items(items, WsjfRules(levels=(Level.EPIC, Level.FEATURE)))
    scored = time.perf_counter()
    plans = plan_writes(
        items, scores, write_back_settings(), orphans=alignment.orphan_refs, decimals=2
    )
    planned = time.perf_counter()
    store.close()
    return {
        "items": len(items),
        "load_seconds": round(loaded - started, 3),
        "align_seconds": round(aligned - loaded, 3),
        "score_seconds": round(scored - aligned, 3),
        "plan_seconds": round(planned - scored, 3),
        "engine_seconds": round(planned - loaded, 3),
        "rss_after_load_mb": round(rss_loaded, 1),
        "aligned": alignment.aligned_count,
        "orphans": len(alignment.orphans),
        "scored": sum(1 for score in scores if score.scored),
        "planned_writes": sum(len(plan.writes) for plan in plans.values()),
        "rank_moves": sum(len(plan.moves) for plan in plans.values()),
    }


def _url(folder: str) -> str:
    return f"sqlite:///{Path(folder, 'engines.db')}"


# -- orchestration ---------------------------------------------------------------------------
def run(quick: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    size = QUICK_SIZE if quick else FULL_SIZE
    with tempfile.TemporaryDirectory(prefix="spm-bench-engines-") as folder:
        log(f"  engines: building a store of {size:,} items")
        built = measured_run("bench.engines:build_store", {"size": size, "folder": folder}, [])
        log(f"    store written in {built.seconds:.1f} s, peak {built.peak_mb:.0f} MB")
        runs: list[Run] = []
        for number in range(3):
            runs.append(measured_run("bench.engines:run_engines", {"folder": folder}, []))
            detail = runs[-1].detail
            log(
                f"    run {number + 1}: load {detail['load_seconds']} s, engines "
                f"{detail['engine_seconds']} s (align {detail['align_seconds']}, score "
                f"{detail['score_seconds']}, plan {detail['plan_seconds']}), "
                f"peak {runs[-1].peak_mb:.0f} MB"
            )
    return {"engines": _result(runs, built, size)}


def _result(runs: list[Run], built: Run, size: int) -> dict[str, Any]:
    detail = dict(median_run(runs, key=lambda run: run.detail["engine_seconds"]).detail)
    if detail["items"] != size:
        raise RuntimeError(f"loaded {detail['items']} of {size} items")
    peak = max(run.peak_mb for run in runs)
    engine_seconds = detail["engine_seconds"]
    return {
        "items": size,
        "requests": 0,
        "baseline_requests": None,
        "seconds": engine_seconds,
        "baseline_seconds": None,
        "load_seconds": detail["load_seconds"],
        "peak_mb": round(peak, 1),
        "method": "median of 3 worker runs by engine time; seconds = align + score + plan "
        "(store load timed apart); peak_mb = peak RSS (VmHWM) of the worker (load + engines)",
        "detail": detail,
        "runs": {
            "engine_seconds": [run.detail["engine_seconds"] for run in runs],
            "load_seconds": [run.detail["load_seconds"] for run in runs],
            "peak_mb": [round(run.peak_mb, 1) for run in runs],
        },
        "store_write": {"seconds": round(built.seconds, 2), "peak_mb": round(built.peak_mb, 1)},
        "targets": [
            target("align + score + plan < 5 s", engine_seconds < 5.0, f"{engine_seconds} s"),
            target("peak memory < 1 GB", peak < 1024, f"{peak:.0f} MB"),
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SIZE:,} items")
    print(json.dumps(run(quick=parser.parse_args().quick)["engines"], indent=2))


if __name__ == "__main__":
    main()
