"""Running measured workers, alternating spm-sync with the baseline, and summarising.

Every measured run is a worker subprocess (`bench.worker`); the sandbox it talks to lives in
this process, so the sandbox's own `counts` give the requests of exactly that run (they are
reset before it starts). Timings are the median over the runs of each side; the spread (min and
max) is kept in `results.json` so a noisy machine shows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.worker import RESULT_MARK

ROOT = Path(__file__).resolve().parent.parent
WATCH_SECONDS = 0.25
LATENCY_MS = 20.0
"""Added latency per request in the HTTP benchmarks (the brief's 20 ms)."""


class WorkerFailed(RuntimeError):
    """A measured run exited non-zero; the message carries the end of its stderr."""


@dataclass(frozen=True, slots=True)
class Run:
    """One measured run: wall time, worker peak RSS, requests the sandbox answered, and what
    the worker returned (items read, writes made, ...)."""

    seconds: float
    peak_mb: float
    start_mb: float
    requests: int
    by_route: Mapping[str, int]
    detail: Mapping[str, Any]

    @property
    def items(self) -> int:
        return int(self.detail.get("items", 0))


def run_worker(
    target: str,
    kwargs: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    watch: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run `target(**kwargs)` in a fresh interpreter and return its measurement; `watch` is
    called with the worker's pid every `WATCH_SECONDS` while it runs (to sample it)."""
    environment = {**os.environ, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(ROOT), environment.get("PYTHONPATH", "")) if part
    )
    command = [sys.executable, "-m", "bench.worker", target, json.dumps(dict(kwargs))]
    with tempfile.TemporaryDirectory(prefix="spm-bench-") as scratch:
        # A cold discovery cache for every run unless `env` names one (importing
        # `connectors.azure_devops_client` points this variable at a per-user cache, which
        # would warm later runs unnoticed).
        if "AZURE_DEVOPS_CACHE_DIR" not in (env or {}):
            environment["AZURE_DEVOPS_CACHE_DIR"] = scratch
        out, err = Path(scratch, "stdout"), Path(scratch, "stderr")
        with out.open("w") as stdout, err.open("w") as stderr:
            process = subprocess.Popen(
                command, cwd=ROOT, env=environment, stdout=stdout, stderr=stderr, text=True
            )
            while True:
                try:
                    code = process.wait(timeout=WATCH_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    if watch is not None:
                        watch(process.pid)
        output, errors = out.read_text(), err.read_text()
    if code != 0:
        raise WorkerFailed(f"{target} exited {code}:\n{errors[-3000:]}")
    for line in reversed(output.splitlines()):
        if line.startswith(RESULT_MARK):
            return dict(json.loads(line[len(RESULT_MARK) :]))
    raise WorkerFailed(f"{target} printed no result:\n{output[-2000:]}")


def measured_run(
    target: str,
    kwargs: Mapping[str, Any],
    sandboxes: Sequence[Any],
    *,
    env: Mapping[str, str] | None = None,
    watch: Callable[[int], None] | None = None,
) -> Run:
    """One worker run against `sandboxes`, with their request counts for that run alone."""
    for sandbox in sandboxes:
        sandbox.reset_counts()
    outcome = run_worker(target, kwargs, env=env, watch=watch)
    by_route: dict[str, int] = {}
    for sandbox in sandboxes:
        for route, count in sandbox.counts.items():
            by_route[route] = by_route.get(route, 0) + count
    detail = {k: v for k, v in outcome.items() if k not in ("seconds", "peak_mb", "start_mb")}
    return Run(
        seconds=float(outcome["seconds"]),
        peak_mb=float(outcome["peak_mb"]),
        start_mb=float(outcome["start_mb"]),
        requests=sum(by_route.values()),
        by_route=dict(sorted(by_route.items())),
        detail=detail,
    )


def alternate(
    spm: Callable[[], Run],
    baseline: Callable[[], Run],
    *,
    spm_runs: int,
    baseline_runs: int,
    log: Callable[[str], None] = print,
) -> tuple[list[Run], list[Run]]:
    """S, B, S, B, ... until both sides have their runs (the surplus side goes last), so slow
    drift in the machine's load hits both sides alike."""
    done = round_robin(
        {"spm-sync": (spm, spm_runs), "baseline": (baseline, baseline_runs)}, log=log
    )
    return done["spm-sync"], done["baseline"]


def round_robin(
    sides: Mapping[str, tuple[Callable[[], Run], int]], *, log: Callable[[str], None] = print
) -> dict[str, list[Run]]:
    """One run of each side in turn (A, B, C, A, B, C, ...) until every side has its number of
    runs; `sides` maps a label to (run it, how many runs)."""
    done: dict[str, list[Run]] = {label: [] for label in sides}
    while any(len(done[label]) < runs for label, (_, runs) in sides.items()):
        for label, (measure, runs) in sides.items():
            if len(done[label]) < runs:
                done[label].append(measure())
                log(f"    {label} run {len(done[label])}: {describe(done[label][-1])}")
    return done


def warm_up(
    sides: Mapping[str, Callable[[], Run]], *, log: Callable[[str], None] = print
) -> dict[str, float]:
    """One unmeasured run per side before the measured ones: it fills the sandbox's cache of
    encoded items for that side's requests (`connectors/sandbox/raw_json.py`), so no measured
    run pays for the test double's rendering and the first run is not slower than the rest.
    Returns the seconds each took (kept in the results, apart)."""
    seconds: dict[str, float] = {}
    for label, measure in sides.items():
        run = measure()
        seconds[label] = round(run.seconds, 3)
        log(f"    {label} warm-up (not measured): {describe(run)}")
    return seconds


def describe(run: Run) -> str:
    return (
        f"{run.seconds:.2f} s, {run.requests} requests, {run.items} items, "
        f"peak {run.peak_mb:.0f} MB"
    )


def median_run(runs: Sequence[Run], key: Callable[[Run], float] | None = None) -> Run:
    """The run with the median time, or the median `key` (the lower middle one for an even
    count)."""
    ordered = sorted(runs, key=key or (lambda run: run.seconds))
    return ordered[(len(ordered) - 1) // 2]


@dataclass
class Comparison:
    """spm-sync against the baseline on one workload: what results.json records."""

    name: str
    spm: list[Run]
    baseline: list[Run]

    def as_dict(self) -> dict[str, Any]:
        spm, base = median_run(self.spm), median_run(self.baseline) if self.baseline else None
        result: dict[str, Any] = {
            "items": spm.items,
            "requests": spm.requests,
            "baseline_requests": base.requests if base else None,
            "seconds": round(spm.seconds, 3),
            "baseline_seconds": round(base.seconds, 3) if base else None,
            "peak_mb": round(max(run.peak_mb for run in self.spm), 1),
            "baseline_peak_mb": round(max(run.peak_mb for run in self.baseline), 1)
            if base
            else None,
            "speedup": ratio(base.seconds, spm.seconds) if base else None,
            "request_ratio": ratio(base.requests, spm.requests) if base else None,
            "method": "median of alternating runs (S, B, S, ...); peak_mb = largest peak "
            "RSS (VmHWM) of the worker subprocesses",
            "runs": {
                "spm_seconds": [round(run.seconds, 3) for run in self.spm],
                "baseline_seconds": [round(run.seconds, 3) for run in self.baseline],
                "spm_peak_mb": [round(run.peak_mb, 1) for run in self.spm],
                "spm_start_mb": [round(run.start_mb, 1) for run in self.spm],
            },
            "spm_by_route": dict(spm.by_route),
            "baseline_by_route": dict(base.by_route) if base else None,
        }
        return result


def ratio(numerator: float, denominator: float) -> float | None:
    if not denominator:
        return None
    return round(numerator / denominator, 2)


def target(description: str, met: bool, why_not: str = "") -> dict[str, Any]:
    """One target line of results.json: what was asked, whether it was met, and why not."""
    entry: dict[str, Any] = {"target": description, "met": met}
    if not met and why_not:
        entry["why"] = why_not
    return entry
