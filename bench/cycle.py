"""Benchmark: one whole first cycle of 200,000 items (quick mode 20,000), 60% Jira Cloud and
40% Azure DevOps, no added latency. Target: peak memory under 1 GB (the pull is streamed into
the store; alignment, scoring and planning hold the items in memory).

The worker runs `spm_sync.pipeline.cycle.run_cycle` in plan mode (no email) with the demo config
pointed at the sandboxes: full pull of both connections in parallel, then analyse, store the
results and the planned writes, render the report. Its peak RSS is the run's peak; the
seconds of each stage come from the store's stage records. One run: it is the memory that is
measured, and the full-mode run takes minutes.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import measured_run, target
from bench.world import ADO, JIRA, newest_run, world
from connectors.registry import default_connector_factory
from spm_sync.config.model import WriteMode, load_config
from spm_sync.pipeline.cycle import CycleDeps, run_cycle
from spm_sync.store import Store

FULL_SIZE = 200_000
QUICK_SIZE = 20_000


def spm_cycle(config_path: str) -> dict[str, Any]:
    config = load_config(config_path)
    with Store.from_settings(config.store) as store:
        factory = default_connector_factory(discovery_cache_dir=None)
        outcome = run_cycle(
            config,
            CycleDeps(store, connector_factory=factory),
            mode=WriteMode.PLAN,
            send_email=False,
        )
        assert outcome.run_id is not None and outcome.result is not None
        stages = {
            f"{record.stage}{'/' + record.connection if record.connection else ''}": round(
                (record.finished_at - record.started_at).total_seconds(), 2
            )
            for record in store.stage_progress(outcome.run_id)
            if record.finished_at is not None
        }
    result = outcome.result
    return {
        "items": sum(health.items_pulled for health in result.connections),
        "status": result.status,
        "errors": [health.error for health in result.connections if health.error],
        "client_requests": sum(health.requests_total for health in result.connections),
        "writes_planned": result.writes.total,
        "stage_seconds": stages,
    }


class StageMemory:
    """Samples the worker's RSS (/proc/<pid>/status VmRSS) with the run's stage (read from the
    store as another process would), keeping the largest sample per stage. Samples are 0.25 s
    apart, so a short spike between two samples is missed; the worker's VmHWM is exact."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.peaks: dict[str, float] = {}

    def __call__(self, pid: int) -> None:
        try:
            with open(f"/proc/{pid}/status", encoding="ascii") as status:
                line = next(line for line in status if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            return
        rss = int(line.split()[1]) / 1024
        stage, _ = newest_run(self.database, timeout=0.5) or ("start", "")
        self.peaks[stage] = round(max(rss, self.peaks.get(stage, 0.0)), 1)


def run(quick: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    size = QUICK_SIZE if quick else FULL_SIZE
    with (
        tempfile.TemporaryDirectory(prefix="spm-bench-cycle-") as scratch,
        world(Path(scratch), size) as sandboxes,
    ):
        log(f"  whole cycle, {size:,} items (plan mode)")
        sampler = StageMemory(Path(scratch, "spm-sync.db"))
        measured = measured_run(
            "bench.cycle:spm_cycle",
            {"config_path": str(sandboxes.config_path)},
            [sandboxes.jira, sandboxes.ado],
            watch=sampler,
        )
    detail = dict(measured.detail)
    if detail["items"] != size or detail["status"] != "ok":
        raise RuntimeError(f"the cycle pulled {detail['items']} of {size}: {detail}")
    log(
        f"    {measured.seconds:.1f} s, peak {measured.peak_mb:.0f} MB, {measured.requests} "
        f"requests; stages {detail['stage_seconds']}; largest RSS sample per stage (MB) "
        f"{sampler.peaks}"
    )
    result = {
        "items": size,
        "requests": measured.requests,
        "baseline_requests": None,
        "seconds": round(measured.seconds, 2),
        "baseline_seconds": None,
        "peak_mb": round(measured.peak_mb, 1),
        "start_mb": round(measured.start_mb, 1),
        "requests_by_tracker": {
            JIRA: sum(n for route, n in measured.by_route.items() if "/rest/" in route),
            ADO: sum(n for route, n in measured.by_route.items() if "/_apis" in route),
        },
        "method": "one worker running run_cycle (plan mode, no email); peak_mb = peak RSS "
        "(VmHWM) of the worker; stage seconds from the store's stage records",
        "detail": detail,
        "rss_mb_by_stage": sampler.peaks,
        "targets": [
            target(
                "peak memory of a 200,000-item run < 1 GB" if not quick else "peak memory < 1 GB",
                measured.peak_mb < 1024,
                f"{measured.peak_mb:.0f} MB",
            )
        ],
    }
    return {"cycle": result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SIZE:,} items")
    print(json.dumps(run(quick=parser.parse_args().quick)["cycle"], indent=2))


if __name__ == "__main__":
    main()
