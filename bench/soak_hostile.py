"""The hostile soak: trackers that misbehave on purpose, and a second process on the store.

One world (both sandboxes, a seeded portfolio, the soak config with tight transfer limits).
A clean first cycle pulls and writes everything; then, for each case, humans edit some scored
items (so every cycle has writes to make), one tracker turns hostile and spm-sync runs a cycle
in apply mode in this process:

- `endless_pages`: every search pages without end (fresh tokens, same issues; keyset and id
  windows ignored);
- `empty_answer`: every search answers with nothing, valid and well-formed;
- `trickle`: every answer leaves one byte at a time;
- `redirect`: every answer is a 307 to another host;
- `huge_page`: every answer is padded to far beyond `max_response_mb`, without a
  Content-Length.

Each hostile cycle must end `partial` within its time bound, with the hostile connection
failed (or its deletions held back) for a reason that names what happened, the other
connection `ok`, no write to the hostile tracker, the store still holding every item of both
trackers, and the worker's peak memory no higher than a few MB above what a normal cycle
needs. Then two `spm-sync run --apply` processes start on the same SQLite store at once: one
runs, the other gets "store busy" (exit status 3) and changes nothing. Finally, with the
trackers well again, cycles run until one writes nothing, and the soak's usual checks run over
the whole history: no lost items, no duplicate or no-op write, store equal to a fresh pull,
`PRAGMA integrity_check`.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from bench.soak_checks import (
    audit_counts,
    duplicate_writes,
    lost_items,
    store_differs_from_tracker,
    unreadable_database,
)
from bench.worker import peak_rss_mb
from bench.world import ADO, JIRA, Humans, World, apply_cycle, world
from connectors.sandbox.server import Faults
from spm_sync.cli.demo import DEMO_SECRETS
from spm_sync.config.model import load_config
from spm_sync.core import exit_codes
from spm_sync.store import Store

ROOT = Path(__file__).resolve().parent.parent
TIGHT_LIMITS = {
    "request_deadline_seconds": 2.0,
    "pull_deadline_seconds": 5.0,
    "max_response_mb": 4.0,
    "max_pages": 500,
}
"""Limits a soak can wait for; the defaults (minutes, 64 MB) are for real portfolios."""
QUICK_RETRIES = {"max_attempts": 3, "base_delay_seconds": 0.02, "max_wait_seconds": 1}
"""No injected 429/503 here, so few tries: each retried hostile answer costs its deadline."""
CYCLE_BOUND_SECONDS = 15.0
"""A hostile cycle must end within this: the pull deadline, plus the rest of the cycle."""
MEMORY_SLACK_MB = 40.0
"""Peak RSS may grow this much over a normal cycle's (the padding alone is 256 MB)."""
SETTLE_CYCLES = 4


@dataclass(frozen=True)
class HostileCase:
    name: str
    connection: str
    faults: Faults
    expect: tuple[str, ...]
    """Words the connection's problem must contain (any one of them, lower case)."""


SEARCH_PATHS = {JIRA: ("/search",), ADO: ("/wiql", "/workitemsbatch")}
"""Where the pull reads items: the hostile modes hit these, so each case fails mid-pull, after
the connection's discovery and field reads went well."""


def hostile_cases(world_: World) -> list[HostileCase]:
    """One case per misbehaviour, on each tracker in turn."""
    elsewhere = {
        JIRA: world_.ado.url.replace("127.0.0.1", "localhost"),
        ADO: world_.jira.url.replace("127.0.0.1", "localhost"),
    }
    cases = []
    for connection in (JIRA, ADO):
        paths = SEARCH_PATHS[connection]
        modes: list[tuple[str, Faults, tuple[str, ...]]] = [
            ("endless_pages", Faults(endless_pages=True), ("page",)),
            ("empty_answer", Faults(empty_answers=True), ("held back",)),
            ("trickle", Faults(trickle_seconds=0.05), ("request_deadline",)),
            ("slow_tracker", Faults(latency_ms=1500), ("pull_deadline",)),
            ("redirect", Faults(redirect_to=elsewhere[connection]), ("another host",)),
            ("huge_page", Faults(padding_mb=256, padding_unsized=True), ("max_response_mb",)),
        ]
        for name, faults, expect in modes:
            # The slow tracker is slow everywhere: every request within its deadline, the
            # pull as a whole not.
            scoped = faults if name == "slow_tracker" else replace(faults, only_paths=paths)
            cases.append(HostileCase(name, connection, scoped, expect))
    return cases


def tighten(config_path: Path) -> None:
    """The soak config with tight transfer limits and few retries on every connection."""
    data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    for connection in data["connections"]:
        connection["limits"] = dict(TIGHT_LIMITS)
        connection["retry"] = dict(QUICK_RETRIES)
    config_path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def _writes(world_: World, connection: str) -> int:
    return len(world_.sandbox(connection).writes)


def hostile_cycle(
    world_: World, store: Store, case: HostileCase
) -> tuple[dict[str, Any], list[str]]:
    """Run one cycle with `case` in force; returns its row and the violations found."""
    other = ADO if case.connection == JIRA else JIRA
    writes_before = _writes(world_, case.connection)
    world_.sandbox(case.connection).set_faults(case.faults)
    started = time.monotonic()
    try:
        outcome = apply_cycle(world_, store)
    finally:
        world_.sandbox(case.connection).set_faults(Faults())
    seconds = time.monotonic() - started
    assert outcome.result is not None and outcome.run_id is not None
    by_name = {c.name: c for c in outcome.result.connections}
    hostile, healthy = by_name[case.connection], by_name[other]
    problem = hostile.problem or ""
    label = f"{case.name} on {case.connection}"
    violations = []
    if outcome.result.status != "partial":
        violations.append(f"{label}: run status {outcome.result.status}, expected partial")
    if not any(word in problem.lower() for word in case.expect):
        violations.append(f"{label}: problem {problem!r} does not say {' / '.join(case.expect)}")
    if healthy.problem:
        violations.append(f"{label}: the other connection failed too: {healthy.problem}")
    if seconds > CYCLE_BOUND_SECONDS:
        violations.append(f"{label}: the cycle took {seconds:.0f} s (bound {CYCLE_BOUND_SECONDS})")
    written = _writes(world_, case.connection) - writes_before
    if written:
        violations.append(f"{label}: {written} write(s) reached the hostile tracker")
    violations += [f"{label}: {lost}" for lost in lost_items(world_, store)]
    row = {
        "case": case.name,
        "connection": case.connection,
        "run": outcome.run_id,
        "status": outcome.result.status,
        "seconds": round(seconds, 2),
        "problem": problem,
        "requests": hostile.requests_total,
        **audit_counts(store, outcome.run_id),
    }
    return row, violations


def two_processes(world_: World) -> tuple[dict[str, Any], list[str]]:
    """Two `spm-sync run --apply` on one SQLite store at once: one runs, one is told "busy"."""
    command = [sys.executable, "-m", "spm_sync", "run", "-c", str(world_.config_path), "--apply"]
    environment = {**os.environ, **DEMO_SECRETS, "PYTHONPATH": str(ROOT)}
    world_.set_faults(Faults(latency_ms=5, seed=3))  # a run long enough to overlap
    try:
        processes = [
            subprocess.Popen(
                command,
                env=environment,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        results = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in processes]
    finally:
        world_.set_faults(Faults())
    codes = sorted(code for code, _ in results)
    violations = []
    if codes not in ([exit_codes.OK, exit_codes.BUSY], [exit_codes.OK, exit_codes.OK]):
        tails = [text.strip().splitlines()[-1:] for _, text in results]
        violations.append(f"two processes: exit statuses {codes}, expected 0 and 3 ({tails})")
    return {"exit_statuses": codes, "overlapped": exit_codes.BUSY in codes}, violations


def hostile_soak(
    folder: Path,
    *,
    size: int = 600,
    edits: int = 3,
    seed: int = 11,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the hostile soak in `folder`; returns the summary with every violation found."""
    started = time.monotonic()
    violations: dict[str, list[str]] = {
        "hostile_case": [],
        "two_processes": [],
        "not_settled": [],
        "lost_items": [],
        "duplicate_writes": [],
        "store_differs_from_tracker": [],
        "unreadable_database": [],
        "memory": [],
    }
    rows: list[dict[str, Any]] = []
    with world(folder, size, seed) as soaked:
        tighten(soaked.config_path)
        store = Store(load_config(soaked.config_path).store.url)
        humans = Humans(soaked, random.Random(seed))
        starts: dict[str, list[int]] = {JIRA: [], ADO: []}

        def mark_cycle() -> None:
            starts[JIRA].append(_writes(soaked, JIRA))
            starts[ADO].append(_writes(soaked, ADO))

        mark_cycle()
        first = apply_cycle(soaked, store)
        assert first.result is not None
        if first.result.status != "ok":
            violations["hostile_case"].append(f"first cycle: {first.result.problems}")
        normal_peak = peak_rss_mb()
        log(f"  first cycle: {first.result.status}, peak {normal_peak:.0f} MB")
        for number, case in enumerate(hostile_cases(soaked), start=2):
            humans.edit_between_cycles(number, edits)
            mark_cycle()
            row, found = hostile_cycle(soaked, store, case)
            rows.append(row)
            violations["hostile_case"] += found
            log(
                f"  {case.name:13} on {case.connection:12}: {row['status']} in "
                f"{row['seconds']:5.1f} s, {row['requests']:4} requests; {row['problem'][:90]}"
            )
        peak = peak_rss_mb()
        if peak > normal_peak + MEMORY_SLACK_MB:
            violations["memory"].append(
                f"peak RSS {peak:.0f} MB after the hostile cycles, {normal_peak:.0f} MB before"
            )
        store.close()
        humans.edit_between_cycles(len(rows) + 2, edits)
        mark_cycle()
        concurrent, found = two_processes(soaked)
        violations["two_processes"] += found
        log(f"  two processes on one store: exit statuses {concurrent['exit_statuses']}")
        store = Store(load_config(soaked.config_path).store.url)
        settled = False
        for _ in range(SETTLE_CYCLES):
            mark_cycle()
            outcome = apply_cycle(soaked, store)
            assert outcome.run_id is not None
            if audit_counts(store, outcome.run_id)["written"] == 0:
                settled = True
                break
        if not settled:
            violations["not_settled"].append(f"still writing after {SETTLE_CYCLES} cycles")
        violations["lost_items"] += lost_items(soaked, store)
        violations["duplicate_writes"] += duplicate_writes(JIRA, soaked.jira.writes, starts[JIRA])
        violations["duplicate_writes"] += duplicate_writes(ADO, soaked.ado.writes, starts[ADO])
        violations["store_differs_from_tracker"] += store_differs_from_tracker(soaked, store)
        store.close()
        violations["unreadable_database"] += unreadable_database(soaked.database)
        writes = {JIRA: len(soaked.jira.writes), ADO: len(soaked.ado.writes)}
    return {
        "items": size,
        "cases": rows,
        "two_processes": concurrent,
        "writes": writes,
        "peak_mb": {"normal_cycle": round(normal_peak), "after_hostile": round(peak)},
        "limits": TIGHT_LIMITS,
        "seconds": round(time.monotonic() - started, 1),
        "violations": violations,
        "ok": not any(violations.values()),
    }
