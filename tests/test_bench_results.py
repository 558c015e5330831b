"""The benchmark results file: a subset run (`--only`) merges into it, a whole run replaces it;
the order in which measured runs alternate, and which run is the median."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.__main__ import merged
from bench.harness import Run, median_run, round_robin


def entry(seconds: float, met: bool = True) -> dict[str, Any]:
    return {"seconds": seconds, "targets": [{"target": "fast", "met": met, "why": "slow"}]}


def run_facts(*benchmarks: str) -> dict[str, Any]:
    return {"benchmarks": list(benchmarks), "started": "2026-11-24T02:00:00+00:00"}


@pytest.fixture
def results_file(tmp_path: Path) -> Path:
    path = tmp_path / "results.json"
    document = {
        "mode": "full",
        "started": "2026-11-20T01:00:00+00:00",
        "load_average_before": [0.5, 0.5, 0.5],
        "benchmarks": {
            "engines": entry(2.5),
            "full_sync_jira": entry(6.0, met=False),
            "full_sync_old_row": entry(1.0),
            "cycle": entry(85.0, met=False),
        },
    }
    path.write_text(json.dumps(document))
    return path


def test_a_subset_replaces_its_own_entries_and_keeps_the_others(results_file: Path) -> None:
    fresh = {"full_sync_jira": entry(2.9), "full_sync_jira_with_store": entry(4.1)}

    document = merged(results_file, "full", run_facts("full_sync"), fresh, partial=True)

    assert list(document["benchmarks"]) == [
        "engines",
        "full_sync_jira",
        "full_sync_jira_with_store",
        "cycle",
    ]
    assert document["benchmarks"]["full_sync_jira"]["seconds"] == 2.9
    assert document["benchmarks"]["cycle"]["seconds"] == 85.0
    assert document["missed_targets"] == ["cycle: fast (slow)"]
    first, latest = document["runs"]
    assert (first["benchmarks"], first["started"]) == ("all", "2026-11-20T01:00:00+00:00")
    assert latest["benchmarks"] == ["full_sync"]
    again = merged(
        results_file, "full", run_facts("engines"), {"engines": entry(2.4)}, partial=True
    )
    assert len(again["runs"]) == 2  # the file on disk was not rewritten in between


def test_a_whole_run_starts_afresh_and_modes_do_not_mix(results_file: Path) -> None:
    document = merged(
        results_file, "full", run_facts("engines"), {"engines": entry(2.0)}, partial=False
    )
    assert list(document["benchmarks"]) == ["engines"]
    assert len(document["runs"]) == 1
    with pytest.raises(SystemExit, match="holds full results, not quick"):
        merged(results_file, "quick", run_facts("engines"), {}, partial=True)


def test_round_robin_alternates_until_every_side_has_its_runs() -> None:
    order: list[str] = []

    def side(label: str) -> Any:
        def measure() -> Run:
            order.append(label)
            return Run(1.0, 50.0, 40.0, 3, {}, {"items": 1})

        return measure

    done = round_robin({"a": (side("a"), 3), "b": (side("b"), 1), "c": (side("c"), 2)}, log=str)

    assert order == ["a", "b", "c", "a", "c", "a"]
    assert [len(done[label]) for label in "abc"] == [3, 1, 2]


def test_median_run_is_the_lower_middle_by_time_or_by_the_given_key() -> None:
    runs = [
        Run(seconds, 50.0, 40.0, 3, {}, {"start_seconds": start})
        for seconds, start in ((3.0, 0.1), (1.0, 0.4), (2.0, 0.3), (4.0, 0.2))
    ]
    assert median_run(runs).seconds == 2.0
    assert median_run(runs, key=lambda run: run.detail["start_seconds"]).seconds == 4.0
