"""Printing benchmark results, and the Markdown table `bench/README.md` carries."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def _number(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def print_comparison(name: str, result: Mapping[str, Any], log: Callable[[str], None]) -> None:
    line = (
        f"  {name}: {_number(result.get('items'))} items | spm-sync "
        f"{_number(result.get('seconds'))} s, {_number(result.get('requests'))} requests, "
        f"peak {_number(result.get('peak_mb'), 0)} MB"
    )
    if result.get("baseline_seconds") is not None:
        line += (
            f" | baseline {_number(result.get('baseline_seconds'))} s, "
            f"{_number(result.get('baseline_requests'))} requests, "
            f"peak {_number(result.get('baseline_peak_mb'), 0)} MB | "
            f"{_number(result.get('speedup'))}x faster, "
            f"{_number(result.get('request_ratio'))}x fewer requests"
        )
    log(line)
    for entry in result.get("targets", ()):
        mark = "met" if entry["met"] else f"MISSED ({entry.get('why', '')})"
        log(f"    target {entry['target']}: {mark}")


TABLE_HEADER = (
    "| benchmark | items | requests | baseline requests | seconds | baseline seconds "
    "| speed-up | peak MB | baseline peak MB | targets |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
)


def markdown_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per benchmark entry of results.json (entries without numbers are skipped)."""
    rows = [TABLE_HEADER]
    for name, result in results.items():
        if not isinstance(result, Mapping) or "seconds" not in result:
            continue
        targets = "; ".join(
            f"{entry['target']}: {'met' if entry['met'] else 'MISSED – ' + entry.get('why', '')}"
            for entry in result.get("targets", ())
        )
        speedup = result.get("speedup")
        rows.append(
            f"| {name} | {_number(result.get('items'))} | {_number(result.get('requests'))} "
            f"| {_number(result.get('baseline_requests'))} | {_number(result.get('seconds'))} "
            f"| {_number(result.get('baseline_seconds'))} "
            f"| {_number(speedup) + 'x' if speedup is not None else '–'} "
            f"| {_number(result.get('peak_mb'), 0)} | {_number(result.get('baseline_peak_mb'), 0)} "
            f"| {targets or '–'} |"
        )
    return "\n".join(rows)
