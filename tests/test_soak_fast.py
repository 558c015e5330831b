"""A short run of the soak (`bench.soak`, `bench.soak_kill`), and the soak's checks on cases
where they must find something, so a quiet soak means a good run and not a blind check."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bench.soak import fault_soak
from bench.soak_checks import duplicate_writes, unreadable_database, unreported_conflicts
from bench.soak_hostile import HostileCase, hostile_cycle, hostile_soak, tighten
from bench.soak_kill import kill_soak
from bench.world import JIRA, world
from connectors.sandbox.server import Faults
from spm_sync.config.model import load_config
from spm_sync.core.domain import ConnectionPlan, PlannedWrite, WriteField, WriteResult, WriteStatus
from spm_sync.store import Store

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(240)]


def no_violations(result: dict[str, Any]) -> dict[str, list[str]]:
    return {name: found for name, found in result["violations"].items() if found}


def test_cycles_under_faults_races_and_edits_lose_nothing_and_report_every_race(
    tmp_path: Path,
) -> None:
    result = fault_soak(tmp_path, size=300, cycles=6, edits=2, races=2, log=lambda _: None)

    assert no_violations(result) == {}
    assert result["ok"]
    assert result["retries"] > 0  # the faults were really hit
    assert result["races"] >= 10 and result["conflicts"] >= result["races"]
    assert result["human_edits"] >= 20
    assert min(result["writes"].values()) > 0
    assert result["per_cycle"][-1]["written"] == 0  # settled


def test_runs_killed_in_pull_apply_and_report_converge_to_an_uninterrupted_run(
    tmp_path: Path,
) -> None:
    result = kill_soak(tmp_path, size=300, kills=3, edits=2, log=lambda _: None)

    assert no_violations(result) == {}
    assert [step["phase"] for step in result["steps"]] == ["pull", "apply", "report"]
    assert result["kills"] >= 2  # a short apply may finish before its kill point


def test_hostile_trackers_and_a_second_process_lose_nothing_and_write_nothing_twice(
    tmp_path: Path,
) -> None:
    result = hostile_soak(tmp_path, size=300, edits=2, log=lambda _: None)

    assert no_violations(result) == {}
    cases = {(row["case"], row["connection"]) for row in result["cases"]}
    assert len(cases) == 12  # six misbehaviours on each tracker
    assert all(row["status"] == "partial" and row["problem"] for row in result["cases"])
    assert sorted(result["two_processes"]["exit_statuses"]) in ([0, 3], [0, 0])


# -- the checks find what they look for ----------------------------------------------------------
@dataclass
class Logged:
    key: str
    field: str
    old: Any
    new: Any


def test_duplicate_writes_flags_no_op_writes_and_fields_written_twice_in_a_cycle() -> None:
    log = [
        Logged("PAY-1", "customfield_10020", 1.5, 2.5),
        Logged("PAY-2", "labels", ["a", "b"], ["b", "a"]),  # a no-op in another order
        Logged("PAY-1", "customfield_10020", 2.5, 3.0),  # the same field again, same cycle
        Logged("PAY-1", "customfield_10020", 3.0, 2.5),  # next cycle: fine
    ]

    found = duplicate_writes("jira", log, cycle_starts=[0, 3])

    assert found == [
        "jira/PAY-2 labels = ['b', 'a']: written though it already held that value (cycle 1)",
        "jira/PAY-1 customfield_10020: written 2 times in cycle 1",
    ]
    assert duplicate_writes("jira", log[:1] + log[3:], cycle_starts=[0, 1]) == []


def test_unreported_conflicts_flags_missed_races_and_conflicts_nobody_caused(
    tmp_path: Path,
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'audit.db'}")
    run_id = store.start_run("apply")
    writes = [
        PlannedWrite("ado", key, WriteField.WSJF_SCORE, None, 5.0, "3") for key in ("11", "12")
    ]
    store.record_plan(run_id, ConnectionPlan("ado", tuple(writes)))
    store.record_write_results(
        run_id,
        [
            WriteResult(writes[0], WriteStatus.WRITTEN),
            WriteResult(writes[1], WriteStatus.CONFLICT, error="changed since planned"),
        ],
    )

    assert unreported_conflicts(store, run_id, {("ado", "12")}) == []
    assert unreported_conflicts(store, run_id, {("ado", "11"), ("ado", "12")}) == [
        f"run {run_id}: ado/11 wsjf_score was edited by a human after the plan but is written"
    ]
    assert unreported_conflicts(store, run_id, set()) == [
        f"run {run_id}: ado/12 wsjf_score reported as a conflict although nobody edited it"
    ]
    store.close()


def test_unreadable_database_flags_a_damaged_file(tmp_path: Path) -> None:
    good = tmp_path / "good.db"
    store = Store(f"sqlite:///{good}")
    store.start_run("plan")
    store.close()
    assert unreadable_database(good) == []

    damaged = tmp_path / "damaged.db"
    data = bytearray(good.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # the first page's b-tree after the header
    damaged.write_bytes(bytes(data))
    found = unreadable_database(damaged)
    assert len(found) == 1 and found[0].startswith("damaged.db: ")


def test_a_hostile_case_that_does_no_harm_is_reported_as_a_violation(tmp_path: Path) -> None:
    """The hostile soak's check is not blind: a "hostile" tracker that behaves well must not
    pass as a case that failed its connection with the expected reason."""
    with world(tmp_path, 120) as made:
        tighten(made.config_path)
        with Store(load_config(made.config_path).store.url) as store:
            harmless = HostileCase("harmless", JIRA, Faults(), ("page",))
            _, violations = hostile_cycle(made, store, harmless)

    assert any("run status ok, expected partial" in found for found in violations)
    assert any("does not say page" in found for found in violations)
