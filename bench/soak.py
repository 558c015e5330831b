"""The soak: `python -m bench.soak [--quick]`.

Part 1, faults (`fault_soak`): both sandboxes answer 10% of requests with 429 and 5% with 503
(Retry-After: 0), reset 1% of connections and add 1-16 ms of latency. spm-sync runs
consecutive cycles in apply mode (in this process; connectors, store and report are the real
ones); before every cycle but the first, humans edit scored items (WSJF inputs, labels, ranks),
and inside every cycle a human edits a few planned items between plan and write (the race).
After the last cycle, with humans and races stopped, cycles run until one writes nothing.
Checked (`bench.soak_checks`): no lost items after every cycle, every race reported as a
conflict and no other conflict, no duplicate or no-op write in the sandboxes' logs, and at the
end the store equal, field for field, to a fresh pull of each tracker.

Part 2, kill -9 (`bench.soak_kill`): see there.

Part 3, hostile trackers and a second process (`bench.soak_hostile`): see there.

Results go to `bench/soak-results.json` (`soak-results-quick.json` in quick mode).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.soak_checks import (
    audit_counts,
    duplicate_writes,
    lost_items,
    store_differs_from_tracker,
    unreadable_database,
    unreported_conflicts,
)
from bench.world import ADO, JIRA, SOAK_FAULTS, Humans, apply_cycle, racing_factory, world
from spm_sync.config.model import load_config
from spm_sync.pipeline.cycle import CycleOutcome
from spm_sync.store import Store

HERE = Path(__file__).resolve().parent
SETTLE_CYCLES = 4


def _faults_seen(outcome: CycleOutcome) -> dict[str, int]:
    assert outcome.result is not None
    return {
        "retries": sum(c.retries for c in outcome.result.connections),
        "throttled": sum(c.throttled for c in outcome.result.connections),
        "requests": sum(c.requests_total for c in outcome.result.connections),
    }


def fault_soak(
    folder: Path,
    *,
    size: int = 600,
    cycles: int = 20,
    edits: int = 3,
    races: int = 2,
    seed: int = 7,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the fault soak in `folder`; returns the summary with every violation found."""
    started = time.monotonic()
    violations: dict[str, list[str]] = {
        "cycle_not_ok": [],
        "lost_items": [],
        "unreported_conflicts": [],
        "duplicate_writes": [],
        "store_differs_from_tracker": [],
        "unreadable_database": [],
    }
    per_cycle: list[dict[str, Any]] = []
    with world(folder, size, seed) as soaked:
        store = Store(load_config(soaked.config_path).store.url)
        humans = Humans(soaked, random.Random(seed))
        raced: dict[int, set[tuple[str, str]]] = {}
        current = [0]
        racing = racing_factory(humans, lambda: current[0], races, raced)
        soaked.set_faults(SOAK_FAULTS)
        starts: dict[str, list[int]] = {JIRA: [], ADO: []}
        total = cycles + SETTLE_CYCLES
        for cycle in range(1, total + 1):
            settling = cycle > cycles
            current[0] = cycle
            if 1 < cycle <= cycles:
                humans.edit_between_cycles(cycle, edits)
            starts[JIRA].append(len(soaked.jira.writes))
            starts[ADO].append(len(soaked.ado.writes))
            factory = racing_factory(humans, lambda: current[0], 0, raced) if settling else racing
            outcome = apply_cycle(soaked, store, factory)
            assert outcome.run_id is not None and outcome.result is not None
            if outcome.result.status != "ok":
                errors = [c.error for c in outcome.result.connections if c.error]
                violations["cycle_not_ok"].append(
                    f"cycle {cycle}: {outcome.result.status} {errors}"
                )
            violations["lost_items"] += lost_items(soaked, store)
            violations["unreported_conflicts"] += unreported_conflicts(
                store, outcome.run_id, raced.get(cycle, set())
            )
            counts = audit_counts(store, outcome.run_id)
            row = {"cycle": cycle, "run": outcome.run_id, "settling": settling, **counts}
            row.update(_faults_seen(outcome), raced=len(raced.get(cycle, ())))
            per_cycle.append(row)
            log(
                f"  cycle {cycle:2}{' (settling)' if settling else ''}: "
                f"{counts['written']} written, {counts['unchanged']} unchanged, "
                f"{counts['conflict']} conflicts ({row['raced']} raced), "
                f"{counts['failed']} failed; "
                f"{row['requests']} requests, {row['retries']} retries"
            )
            if settling and counts["written"] == 0:
                break
        violations["duplicate_writes"] += duplicate_writes(JIRA, soaked.jira.writes, starts[JIRA])
        violations["duplicate_writes"] += duplicate_writes(ADO, soaked.ado.writes, starts[ADO])
        violations["store_differs_from_tracker"] += store_differs_from_tracker(soaked, store)
        store.close()
        violations["unreadable_database"] += unreadable_database(soaked.database)
        converged = per_cycle[-1]["written"] == 0
        if not converged:
            violations["cycle_not_ok"].append(f"still writing after {SETTLE_CYCLES} settle cycles")
    return {
        "items": size,
        "cycles": cycles,
        "settle_cycles": len(per_cycle) - cycles,
        "faults": "10% 429, 5% 503 (Retry-After 0), 1% resets, 1-16 ms latency",
        "human_edits": len(humans.edited),
        "races": sum(len(keys) for keys in raced.values()),
        "writes": {JIRA: len(soaked.jira.writes), ADO: len(soaked.ado.writes)},
        "conflicts": sum(row["conflict"] for row in per_cycle),
        "retries": sum(row["retries"] for row in per_cycle),
        "requests": sum(row["requests"] for row in per_cycle),
        "seconds": round(time.monotonic() - started, 1),
        "per_cycle": per_cycle,
        "violations": violations,
        "ok": not any(violations.values()),
    }


def main() -> None:
    from bench import soak_hostile, soak_kill

    parser = argparse.ArgumentParser(
        description="spm-sync soak: faults, races, kill -9, hostile trackers"
    )
    parser.add_argument("--quick", action="store_true", help="a smaller portfolio")
    parser.add_argument("--output", type=Path, help="results file to write")
    args = parser.parse_args()
    size = 600 if args.quick else 3000
    output = args.output or HERE / (
        "soak-results-quick.json" if args.quick else "soak-results.json"
    )
    with tempfile.TemporaryDirectory(prefix="spm-soak-") as scratch:
        print(f"[faults] {size} items, 20 cycles")
        faults = fault_soak(Path(scratch, "faults"), size=size, edits=3 if args.quick else 10)
        print(f"[kill -9] {size} items, 10 kills")
        kills = soak_kill.kill_soak(Path(scratch, "kills"), size=size, kills=10)
        print(f"[hostile] {size} items, 12 hostile cycles, two processes on one store")
        hostile = soak_hostile.hostile_soak(Path(scratch, "hostile"), size=size)
    document = {
        "mode": "quick" if args.quick else "full",
        "faults": faults,
        "kill": kills,
        "hostile": hostile,
    }
    output.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nwrote {output}")
    for part, result in (("faults", faults), ("kill -9", kills), ("hostile", hostile)):
        found = {name: items for name, items in result["violations"].items() if items}
        print(f"{part}: {'OK' if not found else 'VIOLATIONS'} in {result['seconds']} s")
        for name, items in found.items():
            for item in items:
                print(f"  {name}: {item}")
    raise SystemExit(0 if faults["ok"] and kills["ok"] and hostile["ok"] else 1)


if __name__ == "__main__":
    main()
