"""`python -m bench [--quick] [--only NAME,...] [--output FILE] [--compare OLD.json]`: every
benchmark, then `results.json` (full mode) or `results-quick.json` (quick mode) next to this
file, and the Markdown table for `bench/README.md` on stdout."""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import (
    cycle,
    engines,
    flow_engine,
    full_sync,
    history,
    incremental,
    kr_queries,
    open_scope,
    rerank,
    sandbox_start,
)
from bench.compare import load, regressions
from bench.report import markdown_table

BENCHMARKS: dict[str, Callable[..., dict[str, Any]]] = {
    "sandbox_start": sandbox_start.run,
    "engines": engines.run,
    "flow_engine": flow_engine.run,
    "incremental": incremental.run,
    "rerank": rerank.run,
    "full_sync": full_sync.run,
    "open_scope": open_scope.run,
    "history": history.run,
    "kr_queries": kr_queries.run,
    "cycle": cycle.run,
}
HERE = Path(__file__).resolve().parent


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def missed(results: dict[str, Any]) -> list[str]:
    return [
        f"{name}: {entry['target']} ({entry.get('why', '')})"
        for name, result in results.items()
        for entry in result.get("targets", ())
        if not entry["met"]
    ]


def merged(
    output: Path, mode: str, run: dict[str, Any], results: dict[str, Any], *, partial: bool
) -> dict[str, Any]:
    """The results document to write. A subset (`--only`) replaces only its own entries (those
    named after the benchmarks it ran) in an existing file of the same mode, keeping the other
    benchmarks' numbers and the runs that made them (`runs`, one entry per invocation, newest
    last); a whole run starts the file afresh."""
    previous: dict[str, Any] = {}
    if partial and output.exists():
        previous = json.loads(output.read_text(encoding="utf-8"))
        if previous.get("mode") != mode:
            raise SystemExit(f"{output} holds {previous.get('mode')} results, not {mode}")
    kept = {
        name: entry
        for name, entry in previous.get("benchmarks", {}).items()
        if not any(name.startswith(benchmark) for benchmark in run["benchmarks"])
    }
    benchmarks = dict(sorted({**kept, **results}.items(), key=lambda entry: _order(entry[0])))
    runs = previous.get("runs") or ([_run_of(previous)] if previous else [])
    return {
        "mode": mode,
        **run,
        "benchmarks": benchmarks,
        "missed_targets": missed(benchmarks),
        "runs": [*runs, run],
    }


def _order(entry: str) -> int:
    """Entries in the order of `BENCHMARKS` (a stable sort keeps each benchmark's own order)."""
    owners = [n for n, benchmark in enumerate(BENCHMARKS) if entry.startswith(benchmark)]
    return owners[0] if owners else len(BENCHMARKS)


def _run_of(document: dict[str, Any]) -> dict[str, Any]:
    """The run facts of a file written before `runs` existed (all its benchmarks)."""
    keys = ("started", "duration_seconds", "machine", "load_average_before", "load_average_after")
    return {"benchmarks": "all", **{key: document.get(key) for key in keys}}


def main() -> None:
    parser = argparse.ArgumentParser(description="spm-sync benchmarks (see bench/README.md)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, a few minutes")
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--output", type=Path, help="results file to write")
    parser.add_argument("--compare", type=Path, help="an earlier results file to compare with")
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    output = args.output or HERE / ("results-quick.json" if args.quick else "results.json")
    previous = load(args.compare) if args.compare else None

    started, load_before = time.monotonic(), os.getloadavg()
    when = datetime.now(UTC)
    results: dict[str, Any] = {}
    for name in chosen:
        print(f"[{name}]", flush=True)
        results.update(BENCHMARKS[name](quick=args.quick, log=_log))
    run = {
        "benchmarks": chosen,
        "started": when.isoformat(timespec="seconds"),
        "duration_seconds": round(time.monotonic() - started, 1),
        "machine": machine(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    document = merged(
        output, "quick" if args.quick else "full", run, results, partial=bool(args.only)
    )
    output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {output}\n")
    print(markdown_table(results))
    for line in document["missed_targets"]:
        print(f"MISSED {line}")
    if previous is not None:
        lines, found = regressions(previous, results)
        print("\n" + "\n".join(lines))
        for line in found:
            print(f"REGRESSION {line}")


def _log(message: str) -> None:
    print(message, flush=True)


if __name__ == "__main__":
    main()
