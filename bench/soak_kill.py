"""The kill -9 soak: cycles killed at random points must leave a readable store, and the runs
after them must bring the trackers to the state an uninterrupted run reaches.

Two identical worlds (same seed, same human edits): "killed" and "reference". For each of the
`kills` steps, humans edit both alike; then
1. killed: `spm-sync run --apply` in a subprocess (the real CLI, against the sandboxes in this
   process) gets SIGKILL during the step's phase, taking turns: `pull` (after a random 1-4
   tracker answers), `apply` (after a random 1-3 tracker writes), `report` (a random 0-100 ms
   after the run's stage turned to report, while the run is still running). A run that ends
   before its kill point counts as not killed. The SQLite file must then pass
   `PRAGMA integrity_check` and open as a store;
2. the killed world reruns (a new process's worth of state: a fresh `Store`, fresh connectors)
   and the reference world runs uninterrupted, each until a cycle writes nothing;
3. both trackers must then agree on every value spm-sync writes (WSJF score, Cost of Delay,
   priority, labels) on every item and on the order of the ranked items.
At the end the killed world's store must equal a fresh pull, and its write logs must hold no
duplicate or no-op write.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.soak_checks import (
    audit_counts,
    duplicate_writes,
    store_differs_from_tracker,
    unreadable_database,
)
from bench.world import ADO, JIRA, STACK_RANK, Humans, World, apply_cycle, newest_run, world
from connectors.sandbox.server import Faults
from spm_sync.cli.demo import DEMO_SECRETS
from spm_sync.config.model import load_config
from spm_sync.store import Store

PHASES = ("pull", "apply", "report")
KILL_FAULTS = Faults(latency_ms=5, jitter_ms=10, seed=5)
"""Latency only, so each phase lasts long enough to be hit."""
MAX_CYCLES_TO_SETTLE = 4
ROOT = Path(__file__).resolve().parent.parent


def run_killed(world_: World, phase: str, rng: random.Random, log_file: Path) -> dict[str, Any]:
    """One `spm-sync run --apply` in a subprocess, killed with SIGKILL during `phase`."""
    requests_before = world_.jira.request_count + world_.ado.request_count
    writes_before = len(world_.jira.writes) + len(world_.ado.writes)
    threshold = {"pull": rng.randint(1, 4), "apply": rng.randint(1, 3)}.get(phase, 0)
    delay = rng.uniform(0, 0.1)
    command = [sys.executable, "-m", "spm_sync", "run", "-c", str(world_.config_path), "--apply"]
    environment = {**os.environ, **DEMO_SECRETS, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as cache, log_file.open("ab") as output:
        environment["AZURE_DEVOPS_CACHE_DIR"] = cache
        process = subprocess.Popen(
            [*command, "--no-email"], cwd=ROOT, env=environment, stdout=output, stderr=output
        )
        reached_at: float | None = None
        while process.poll() is None:
            if phase == "pull":
                answered = world_.jira.request_count + world_.ado.request_count - requests_before
                reached = answered >= threshold
            elif phase == "apply":
                written = len(world_.jira.writes) + len(world_.ado.writes) - writes_before
                reached = written >= threshold
            else:
                reached = newest_run(world_.database) == ("report", "running")
            if reached and reached_at is None:
                reached_at = time.monotonic()
            if reached_at is not None and time.monotonic() - reached_at >= (
                delay if phase == "report" else 0
            ):
                process.kill()
                break
            time.sleep(0.002)
        code = process.wait()
    stage = newest_run(world_.database)
    return {
        "phase": phase,
        "killed": code == -9,
        "exit_code": code,
        "run_at_kill": f"{stage[1]} in stage {stage[0]}" if stage else "no run yet",
    }


def settle(world_: World) -> list[int]:
    """Cycles (each with a fresh store object and connectors) until one writes nothing;
    returns how many writes each made."""
    written: list[int] = []
    for _ in range(MAX_CYCLES_TO_SETTLE):
        with Store(load_config(world_.config_path).store.url) as store:
            outcome = apply_cycle(world_, store)
            assert outcome.run_id is not None
            written.append(audit_counts(store, outcome.run_id)["written"])
        if written[-1] == 0:
            break
    return written


def written_state(world_: World) -> dict[str, Any]:
    """What spm-sync writes, as the trackers hold it: values per item, order of ranked items."""
    jira, ado = world_.jira, world_.ado
    score, cost = jira.field_id("WSJF Score"), jira.field_id("Cost of Delay")
    values: dict[str, Any] = {}
    for seed in world_.portfolio.jira:
        fields = jira.issue(seed.key)["fields"]
        priority = (fields.get("priority") or {}).get("name")
        values[f"{JIRA}/{seed.key}"] = (
            fields.get(score),
            fields.get(cost),
            priority,
            tuple(sorted(fields.get("labels") or ())),
        )
    ranks: dict[str, float] = {}
    for seed in world_.portfolio.azure_devops:
        fields = ado.work_item(int(seed.key))["fields"]
        tags = str(fields.get("System.Tags") or "")
        values[f"{ADO}/{seed.key}"] = (
            fields.get("Custom.WSJFScore"),
            fields.get("Custom.CostOfDelay"),
            fields.get("Microsoft.VSTS.Common.Priority"),
            tuple(sorted(tag.strip() for tag in tags.split(";") if tag.strip())),
        )
        ranks[seed.key] = float(fields.get(STACK_RANK) or 0.0)
    ado_scope = world_.scope_keys(ADO)
    return {
        "values": values,
        "jira_order": jira.rank_order(world_.scope_keys(JIRA)),
        "ado_order": sorted(ado_scope, key=lambda key: (ranks[key], int(key))),
    }


def differences(killed: dict[str, Any], reference: dict[str, Any], step: int) -> list[str]:
    problems = [
        f"step {step}: {ref} holds {value} after the kill, {reference['values'].get(ref)} "
        "after an uninterrupted run"
        for ref, value in killed["values"].items()
        if reference["values"].get(ref) != value
    ]
    for order in ("jira_order", "ado_order"):
        if killed[order] != reference[order]:
            problems.append(f"step {step}: {order} differs from the uninterrupted run")
    return problems


def kill_soak(
    folder: Path,
    *,
    size: int = 600,
    kills: int = 10,
    edits: int = 2,
    seed: int = 7,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    started = time.monotonic()
    violations: dict[str, list[str]] = {
        "unreadable_database": [],
        "diverged": [],
        "store_differs_from_tracker": [],
        "duplicate_writes": [],
    }
    steps: list[dict[str, Any]] = []
    rng = random.Random(seed)
    with (
        world(folder / "killed", size, seed) as killed,
        world(folder / "reference", size, seed) as reference,
    ):
        killed.set_faults(KILL_FAULTS)
        reference.set_faults(KILL_FAULTS)
        humans = (Humans(killed, random.Random(seed)), Humans(reference, random.Random(seed)))
        starts: dict[str, list[int]] = {JIRA: [], ADO: []}
        for step in range(kills):
            if step:
                for human in humans:
                    human.edit_between_cycles(step, edits)
            starts[JIRA].append(len(killed.jira.writes))
            starts[ADO].append(len(killed.ado.writes))
            outcome = run_killed(killed, PHASES[step % 3], rng, folder / "killed-runs.log")
            violations["unreadable_database"] += unreadable_database(killed.database)
            outcome["reruns_written"] = settle(killed)
            outcome["reference_written"] = settle(reference)
            violations["diverged"] += differences(
                written_state(killed), written_state(reference), step + 1
            )
            steps.append(outcome)
            log(
                f"  step {step + 1:2}: kill during {outcome['phase']:6} "
                f"{'killed' if outcome['killed'] else 'finished first'} "
                f"(exit {outcome['exit_code']}, run {outcome['run_at_kill']}); "
                f"reruns wrote {outcome['reruns_written']}, "
                f"the uninterrupted run {outcome['reference_written']}"
            )
        with Store(load_config(killed.config_path).store.url) as store:
            violations["store_differs_from_tracker"] += store_differs_from_tracker(killed, store)
        violations["duplicate_writes"] += duplicate_writes(JIRA, killed.jira.writes, starts[JIRA])
        violations["duplicate_writes"] += duplicate_writes(ADO, killed.ado.writes, starts[ADO])
    return {
        "items": size,
        "kills": sum(1 for step in steps if step["killed"]),
        "steps": steps,
        "seconds": round(time.monotonic() - started, 1),
        "violations": violations,
        "ok": not any(violations.values()),
    }
