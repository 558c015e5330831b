"""Benchmark: flow metrics, Portfolio Kanban and forecasts
(`spm_sync.pipeline.flow_stage.measure_flow`) on a stored portfolio of 200,000 items with
2,000,000 status changes (quick mode 50,000 / 500,000). Targets (issue 13): the flow
computation under 5 s, peak memory under 1 GB.

Setup (one worker, not measured): the generated portfolio (`bench.portfolio`) is written to a
fresh SQLite store, then 10 status changes per item (`Store.add_status_changes`): a seeded walk
through the Portfolio Kanban's stages (`STANDARD_STAGES`) that ends in the item's current
status, with steps back (reopened, sent back to analysis or the funnel) and moves between the
statuses of one stage; so some items are done, some done and reopened, some in progress.
Jira's changes carry their category, Azure DevOps's do not (as their changelogs do).

Measured (three workers, median by computation time): `Store.load_items()`, `align` and
`score_items` (as `bench.engines`; timed apart), then `measure_flow` with every level measured,
so every work item and every one of its changes goes through the engines (the 0.06% that are
Key Result items are OKRs, not work, and have no level). `measure_flow` reads the history a
connection at a time between computing (that is how it keeps one connection's history in
memory, never the portfolio's), so reading is timed from inside: the store's
`read_status_columns` is wrapped and the time spent in it (SQLite pages turned into columns:
item keys, epoch microseconds, status codes) is the read time; the computation is
`measure_flow`'s time minus it. As a
check, the `_preloaded` row reads every history into memory first (the same store function,
the same keys) and then times `measure_flow` on them alone; its peak holds the whole
portfolio's history, which the pipeline never does.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import random
import tempfile
import time
from collections.abc import Callable, Collection, Container, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.harness import Run, measured_run, median_run, target
from bench.portfolio import alignment_rules, objectives, work_items
from bench.worker import current_rss_mb
from connectors.sandbox.generator import generate_portfolio
from spm_sync.config.flow import STANDARD_STAGES, FlowConfig
from spm_sync.core.domain import KeyResult, Level, Objective, WorkItem
from spm_sync.core.history import StatusChange
from spm_sync.engines.alignment import AlignmentResult, align
from spm_sync.engines.wsjf import WsjfRules, score_items
from spm_sync.pipeline.flow_stage import measure_flow
from spm_sync.store import Store
from spm_sync.store.history import StatusColumns

FULL_SIZE = 200_000
QUICK_SIZE = 50_000
CHANGES_PER_ITEM = 10
NOW = datetime(2026, 12, 1, tzinfo=UTC)
"""The portfolio's and the flow stage's clock: fixed, so every day's runs measure the same."""
OKR_FILE = "okrs.json"
SEED = 13

STAGE_NAMES = tuple(name for name, _, _ in STANDARD_STAGES)
STAGE_CATEGORIES = tuple(category for _, category, _ in STANDARD_STAGES)
TRACKER_STATUSES: dict[str, tuple[tuple[str, ...], ...]] = {
    # Per stage, in STANDARD_STAGES order: the statuses each tracker's workflow uses there
    # (all mapped by the default stages; the items' current statuses among them).
    "jira": (
        ("To Do", "Open"),
        ("Reviewing",),
        ("Analysis",),
        ("Backlog", "Selected for Development"),
        ("In Progress", "In Review", "Reopened"),
        ("Done",),
    ),
    "ado": (
        ("New", "Proposed"),
        ("Reviewing",),
        ("Design",),
        ("Approved", "Ready"),
        ("Active", "Committed", "Resolved"),
        ("Closed",),
    ),
}
FORWARD, BACK = 0.65, 0.15
"""Chances of a step to the next stage and back to the one before (reopened, sent back);
otherwise the item moves to another status of the same stage where it has one."""

FLOW_CONFIG = {
    "levels": [level.name.lower() for level in Level],
    "wip_limits": {
        "per_stage": {"analyzing": 500, "implementing": 5000},
        "per_value_stream": {"PAY": {"implementing": 300}},
    },
    "active_statuses": ["Analysis", "Design", "In Progress", "Active", "Committed"],
    "wait_statuses": ["Backlog", "Selected for Development", "Approved", "Ready", "In Review"],
    "forecast": {"seed": SEED},
}
"""Every level measured; limits, active and waiting statuses set, so every part of the flow
section (efficiency, limits exceeded, stop starting) does its work."""


# -- the store, built once in a worker -------------------------------------------------------
def build_store(size: int, folder: str) -> dict[str, Any]:
    portfolio = generate_portfolio(size, jira_share=0.6, now=NOW)
    goals = [
        # Every other objective due soon (the forecast misses it), the others far ahead.
        dataclasses.replace(o, target_date=(NOW + timedelta(days=42 if n % 2 else 730)).date())
        for n, o in enumerate(objectives(portfolio))
    ]
    okrs = {
        "objectives": [
            [o.id, o.title, o.owner, o.period, o.target_date.isoformat() if o.target_date else None]
            for o in goals
        ],
        "key_results": [
            # From the seeds, not `bench.portfolio.key_results`: that one gives the aliases
            # where `KeyResult` now takes its baseline.
            [kr.id, kr.objective_id, kr.title, kr.target, kr.current, list(kr.aliases)]
            for kr in portfolio.key_results
        ],
    }
    Path(folder, OKR_FILE).write_text(json.dumps(okrs), encoding="utf-8")
    items = list(work_items(portfolio))
    del portfolio
    store = Store(_url(folder))
    try:
        started = time.perf_counter()
        store.upsert_items(items)
        items_written = time.perf_counter()
        stored = 0
        for connection in dict.fromkeys(item.connection for item in items):
            mine = [item for item in items if item.connection == connection]
            stored += store.add_status_changes(connection, status_changes(mine))
        changes_written = time.perf_counter()
    finally:
        store.close()
    if stored != CHANGES_PER_ITEM * len(items):
        raise RuntimeError(f"stored {stored:,} status changes for {len(items):,} items")
    return {
        "items": len(items),
        "status_changes": stored,
        "items_seconds": round(items_written - started, 1),
        "changes_seconds": round(changes_written - items_written, 1),
    }


def status_changes(items: Sequence[WorkItem]) -> Iterator[StatusChange]:
    """`CHANGES_PER_ITEM` changes per item, the same for the same items (see the module)."""
    rng = random.Random(f"{SEED}:{len(items)}:{items[0].connection if items else ''}")
    for item in items:
        yield from _walk(item, rng)


def _walk(item: WorkItem, rng: random.Random) -> Iterator[StatusChange]:
    per_stage = TRACKER_STATUSES[item.connection]
    final = next(n for n, names in enumerate(per_stage) if item.status in names)
    stages = _stage_path(final, per_stage, rng)
    # Chosen from the end back, each unlike the one after it: no change is a no-op.
    statuses = [item.status]
    for stage in reversed(stages[:-1]):
        choices = [name for name in per_stage[stage] if name != statuses[-1]]
        statuses.append(rng.choice(choices))
    statuses.reverse()
    created, updated = item.created or NOW, item.updated or NOW
    span = (updated - created).total_seconds()
    moments = sorted(rng.random() for _ in range(CHANGES_PER_ITEM))
    ref = (item.connection, item.key)
    tells_category = item.connection == "jira"
    for step, fraction in enumerate(moments, start=1):
        category = STAGE_CATEGORIES[stages[step]] if tells_category else None
        at = created + timedelta(seconds=round(span * fraction))
        yield StatusChange(ref, at, statuses[step - 1], statuses[step], category)


def _stage_path(final: int, per_stage: Sequence[Sequence[str]], rng: random.Random) -> list[int]:
    """Stage indexes, the first the funnel (creation), one per change, the last `final`: a
    random walk biased forward, each step one that can still reach `final` in the steps left."""
    sizes = tuple(len(names) for names in per_stage)
    path = [0]
    for left in range(CHANGES_PER_ITEM - 1, -1, -1):
        steps = [(s, w) for s, w in _steps(path[-1], sizes) if _reaches(s, left, final, sizes)]
        if not steps:
            raise AssertionError(f"no step from stage {path[-1]} reaches {final} in {left + 1}")
        stages, weights = zip(*steps, strict=True)
        path.append(rng.choices(stages, weights)[0])
    return path


def _steps(here: int, sizes: tuple[int, ...]) -> list[tuple[int, float]]:
    """(stage, weight) of each step from `here`: on, back, or to another status of the stage
    (only where it has another)."""
    steps = []
    if here < len(sizes) - 1:
        steps.append((here + 1, FORWARD))
    if here > 0:
        steps.append((here - 1, BACK))
    if sizes[here] > 1:
        steps.append((here, 1.0 - FORWARD - BACK))
    return steps


@functools.cache
def _reaches(here: int, left: int, final: int, sizes: tuple[int, ...]) -> bool:
    """Whether `left` more steps can end at `final` (a stage of one status cannot be stayed in,
    so parity matters)."""
    if left == 0:
        return here == final
    return any(_reaches(s, left - 1, final, sizes) for s, _ in _steps(here, sizes))


# -- measured in a worker --------------------------------------------------------------------
class TimedHistoryStore(Store):
    """The store, counting the time spent reading status histories and the changes read, so
    the computation can be told apart from the reading it is interleaved with. The flow
    stage reads the history as columns (`read_status_columns`), one call per connection."""

    read_seconds = 0.0
    changes_read = 0
    preloaded: dict[str, StatusColumns] | None = None

    def read_status_columns(
        self,
        connection: str,
        *,
        keys: Container[str] | None = None,
        levels: Collection[int] | None = None,
    ) -> StatusColumns:
        if self.preloaded is not None:
            # Already in memory (read with the same keys and levels).
            return self.preloaded[connection]
        started = time.perf_counter()
        columns = super().read_status_columns(connection, keys=keys, levels=levels)
        self.read_seconds += time.perf_counter() - started
        self.changes_read += len(columns.at)
        return columns

    def preload(self, keys_by_connection: dict[str, set[str]], levels: list[int]) -> None:
        """Every connection's histories read into memory, as `measure_flow` reads them
        (`spm_sync.pipeline.flow_input`: the measured items' keys, the measured levels)."""
        self.preloaded = {
            connection: self.read_status_columns(connection, keys=keys, levels=levels)
            for connection, keys in keys_by_connection.items()
        }


def run_flow(folder: str, preloaded: bool = False) -> dict[str, Any]:
    okrs = json.loads(Path(folder, OKR_FILE).read_text(encoding="utf-8"))
    krs = [
        KeyResult(a, b, c, target=d, current=e, aliases=tuple(f))
        for a, b, c, d, e, f in okrs["key_results"]
    ]
    goals = [
        Objective(a, b, c, d, date.fromisoformat(e) if e else None)
        for a, b, c, d, e in okrs["objectives"]
    ]
    config = FlowConfig.model_validate(FLOW_CONFIG)
    store = TimedHistoryStore(_url(folder))
    started = time.perf_counter()
    items = store.load_items()
    loaded = time.perf_counter()
    # What the cycle's analysis hands the flow stage (`spm_sync.pipeline.analysis.analyse`).
    alignment: AlignmentResult = align(items, krs, alignment_rules(), goals)
    # Epics and features, as when these figures were first taken (the default is epics).
    scores = score_items(items, WsjfRules(levels=(Level.EPIC, Level.FEATURE)))
    analysed = time.perf_counter()
    by_ref = {(item.connection, item.key): item for item in items}
    levels = set(config.levels)
    keys: dict[str, set[str]] = {}
    for item in items:
        if item.level in levels:
            keys.setdefault(item.connection, set()).add(item.key)
    del items
    if preloaded:
        store.preload(keys, sorted({int(level) for level in config.levels}))
    rss_before_flow = current_rss_mb()
    read_before = store.read_seconds
    flow_started = time.perf_counter()
    section = measure_flow(
        config, store, by_ref, alignment, scores, now=NOW, rng=random.Random(SEED)
    )
    flow_seconds = time.perf_counter() - flow_started
    store.close()
    kanban = section.kanban
    return {
        "items": len(by_ref),
        "measured_items": sum(len(level_keys) for level_keys in keys.values()),
        "flow_items": section.items,
        "status_changes_read": store.changes_read,
        "preloaded": preloaded,
        "load_seconds": round(loaded - started, 3),
        "align_score_seconds": round(analysed - loaded, 3),
        "history_read_seconds": round(store.read_seconds, 3),
        "measure_flow_seconds": round(flow_seconds, 3),
        "compute_seconds": round(flow_seconds - (store.read_seconds - read_before), 3),
        "rss_before_flow_mb": round(rss_before_flow, 1),
        "groups": len(section.groups),
        "kanban_boards": len(kanban.boards) if kanban is not None else 0,
        "over_limit": len(kanban.over_limit) if kanban is not None else 0,
        "forecasts": len(section.forecasts),
        "problem_count": section.problem_count,
    }


def _url(folder: str) -> str:
    return f"sqlite:///{Path(folder, 'flow.db')}"


# -- orchestration ---------------------------------------------------------------------------
def run(quick: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    size = QUICK_SIZE if quick else FULL_SIZE
    with tempfile.TemporaryDirectory(prefix="spm-bench-flow-") as folder:
        log(f"  flow_engine: building a store of {size:,} items, {CHANGES_PER_ITEM} changes each")
        built = measured_run("bench.flow_engine:build_store", {"size": size, "folder": folder}, [])
        log(
            f"    store written in {built.seconds:.1f} s (items {built.detail['items_seconds']} "
            f"s, changes {built.detail['changes_seconds']} s), peak {built.peak_mb:.0f} MB"
        )

        runs: dict[bool, list[Run]] = {False: [], True: []}
        for number in range(3):
            # Streamed and preloaded in turn, so drift in the machine's load hits both.
            for preloaded in (False, True):
                kwargs = {"folder": folder, "preloaded": preloaded}
                runs[preloaded].append(measured_run("bench.flow_engine:run_flow", kwargs, []))
                detail = runs[preloaded][-1].detail
                log(
                    f"    {'preloaded' if preloaded else 'streamed'} run {number + 1}: load "
                    f"{detail['load_seconds']} s, align + score {detail['align_score_seconds']} "
                    f"s, history read {detail['history_read_seconds']} s, flow computation "
                    f"{detail['compute_seconds']} s (measure_flow "
                    f"{detail['measure_flow_seconds']} s), peak "
                    f"{runs[preloaded][-1].peak_mb:.0f} MB"
                )
    return {
        "flow_engine": _result(runs[False], built, size),
        "flow_engine_preloaded": _result(runs[True], built, size),
    }


def _result(runs: list[Run], built: Run, size: int) -> dict[str, Any]:
    detail = dict(median_run(runs, key=lambda run: run.detail["compute_seconds"]).detail)
    changes = built.detail["status_changes"]
    if detail["items"] != size or detail["flow_items"] != detail["measured_items"]:
        raise RuntimeError(
            f"loaded {detail['items']} of {size} items, measured {detail['flow_items']} of "
            f"{detail['measured_items']}"
        )
    if detail["status_changes_read"] != CHANGES_PER_ITEM * detail["measured_items"]:
        raise RuntimeError(f"read {detail['status_changes_read']:,} status changes")
    peak = max(run.peak_mb for run in runs)
    compute = detail["compute_seconds"]
    preloaded = detail["preloaded"]
    return {
        "items": size,
        "status_changes": changes,
        "requests": 0,
        "baseline_requests": None,
        "seconds": compute,
        "baseline_seconds": None,
        "history_read_seconds": detail["history_read_seconds"],
        "measure_flow_seconds": detail["measure_flow_seconds"],
        "load_seconds": detail["load_seconds"],
        "peak_mb": round(peak, 1),
        "method": "median of 3 worker runs by computation time; seconds = measure_flow minus "
        + (
            "nothing to read (every history read into memory before, history_read_seconds)"
            if preloaded
            else "the time inside the store's read_status_columns (history_read_seconds)"
        )
        + "; load, align and score timed apart; peak_mb = peak RSS (VmHWM) of the worker "
        "(load + align + score + flow)",
        "detail": detail,
        "runs": {
            "compute_seconds": [run.detail["compute_seconds"] for run in runs],
            "history_read_seconds": [run.detail["history_read_seconds"] for run in runs],
            "measure_flow_seconds": [run.detail["measure_flow_seconds"] for run in runs],
            "peak_mb": [round(run.peak_mb, 1) for run in runs],
        },
        "store_write": {
            "seconds": round(built.seconds, 1),
            "peak_mb": round(built.peak_mb, 1),
            "items_seconds": built.detail["items_seconds"],
            "changes_seconds": built.detail["changes_seconds"],
        },
        "targets": [
            target("flow computation < 5 s (issue 13)", compute < 5.0, f"{compute} s"),
            target("peak memory < 1 GB (issue 13)", peak < 1024, f"{peak:.0f} MB"),
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SIZE:,} items")
    print(json.dumps(run(quick=parser.parse_args().quick), indent=2))


if __name__ == "__main__":
    main()
