"""A `spm-sync run --apply` killed with SIGKILL halfway through its writes, then run again,
leaves the trackers exactly as one uninterrupted run does.

The cycle runs in a subprocess; the sandboxes run in this process, so they outlive the kill
and count the writes that reached them. A reference pair of sandboxes with the same seeded
portfolio gets one uninterrupted run. On SQLite and on PostgreSQL (whose advisory lock of the
killed run goes with its connection)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from connectors.registry import default_connector_factory
from connectors.sandbox.server import Faults
from spm_sync.config.model import WriteMode
from spm_sync.pipeline.cycle import CycleDeps, run_cycle
from spm_sync.store import RunStatus, Store
from tests.cycle_fixtures import SandboxSetup, sandbox_setup

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parent.parent
SIZE, SEED = 400, 3
KILL_AFTER_WRITES = 25


def tracker_state(env: SandboxSetup, scored: dict[str, list[str]]) -> dict[str, Any]:
    """What spm-sync writes, as the trackers hold it: values per item, order of the ranked."""
    jira_fields = {name: env.jira.field_id(name) for name in ("WSJF Score", "Cost of Delay")}
    state: dict[str, Any] = {}
    for seed in env.portfolio.jira:
        fields = env.jira.issue(seed.key)["fields"]
        priority = (fields.get("priority") or {}).get("name")
        values = [fields.get(field_id) for field_id in jira_fields.values()]
        state[f"jira/{seed.key}"] = (*values, priority, sorted(fields.get("labels") or []))
    for seed in env.portfolio.azure_devops:
        fields = env.ado.work_item(int(seed.key))["fields"]
        state[f"ado/{seed.key}"] = (
            fields.get("Custom.WSJFScore"),
            fields.get("Custom.CostOfDelay"),
            fields.get("Microsoft.VSTS.Common.Priority"),
            fields.get("System.Tags"),
        )
    state["jira order"] = env.jira.rank_order(scored["jira"])
    ado_rank = {
        key: env.ado.work_item(int(key))["fields"].get("Microsoft.VSTS.Common.StackRank")
        for key in scored["azure-devops"]
    }
    state["ado order"] = sorted(ado_rank, key=lambda key: ado_rank[key])
    return state


def writes_seen(env: SandboxSetup) -> int:
    return len(env.jira.writes) + len(env.ado.writes)


def test_a_killed_apply_rerun_ends_like_an_uninterrupted_run(
    tmp_path: Path, store_url: str
) -> None:
    with sandbox_setup(tmp_path / "reference", size=SIZE, seed=SEED) as reference:
        config = reference.config()
        with Store.from_settings(config.store) as store:
            deps = CycleDeps(
                store, connector_factory=default_connector_factory(discovery_cache_dir=None)
            )
            expected_run = run_cycle(config, deps, mode=WriteMode.APPLY, send_email=False)
        assert expected_run.result is not None and expected_run.result.status == "ok"
        scored = {
            name: [r.key for r in expected_run.result.wsjf if r.connection == name]
            for name in ("jira", "azure-devops")
        }
        expected = tracker_state(reference, scored)
        total_writes = writes_seen(reference)
    assert total_writes > 3 * KILL_AFTER_WRITES

    with sandbox_setup(tmp_path / "killed", size=SIZE, seed=SEED, store_url=store_url) as env:
        slow = Faults(latency_ms=20)  # so the kill lands halfway through the write-back
        env.jira.set_faults(slow)
        env.ado.set_faults(slow)
        command = [sys.executable, "-m", "spm_sync", "run", "-c", str(env.config_path)]
        process = subprocess.Popen(
            [*command, "--apply", "--no-email"],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 120
        while writes_seen(env) < KILL_AFTER_WRITES and process.poll() is None:
            assert time.monotonic() < deadline, "the write-back never started"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        assert process.returncode == -signal.SIGKILL, (
            process.stderr.read() if process.stderr else ""
        )
        process.stderr.close()  # type: ignore[union-attr]
        killed_at = writes_seen(env)
        assert KILL_AFTER_WRITES <= killed_at < total_writes

        env.jira.set_faults(Faults())
        env.ado.set_faults(Faults())
        config = env.config()
        with Store.from_settings(config.store) as store:
            deps = CycleDeps(
                store, connector_factory=default_connector_factory(discovery_cache_dir=None)
            )
            rerun = run_cycle(config, deps, mode=WriteMode.APPLY, send_email=False)
            killed = store.get_run(1)
            assert killed is not None and killed.status is RunStatus.FAILED
            assert killed.error is not None and killed.error.startswith("interrupted during stage")
            assert store.unfinished_runs() == []
            assert rerun.result is not None and rerun.result.status == "ok"
            assert rerun.result.writes.counts["conflict"] == 0
            # The rerun did only what the killed run had left undone.
            assert 0 < rerun.result.writes.counts["written"] < total_writes
            assert tracker_state(env, scored) == expected
            again = run_cycle(config, deps, mode=WriteMode.APPLY, send_email=False)
            assert again.result is not None and again.result.headline.writes_planned == 0
