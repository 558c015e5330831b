"""One cycle at a time on a SQLite store: the lock file, what a second cycle or undo does when
it finds the store busy, and two real `spm-sync run --apply` processes on one SQLite file
against the sandbox trackers (the second exits 3 and nothing is written twice)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.sandbox.server import Faults
from spm_sync.cli.commands import run_undo
from spm_sync.config.model import WriteMode
from spm_sync.core import exit_codes
from spm_sync.pipeline.cycle import CycleDeps, run_cycle
from spm_sync.store import RunStatus, Store, StoreBusy
from spm_sync.store.cycle_lock import lock_path
from tests.cycle_fixtures import (
    Clock,
    FakeConnector,
    FakeTracker,
    fake_config,
    sandbox_setup,
    three_epics,
)

REPO = Path(__file__).resolve().parent.parent


def test_the_store_admits_one_cycle_at_a_time_across_store_objects(sqlite_url: str) -> None:
    busy = r"^store busy: .*\(pid \d+ on .* since .*\); the undo of run 3 was not started"
    with Store(sqlite_url) as first, Store(sqlite_url) as second:
        with first.cycle_lock(), pytest.raises(StoreBusy, match=busy):  # noqa: SIM117
            with second.cycle_lock("the undo of run 3"):
                pass
        with second.cycle_lock():  # released with the block
            pass
    assert lock_path(Path(sqlite_url.removeprefix("sqlite:///"))).exists()


def test_a_store_in_memory_needs_no_lock() -> None:
    with Store("sqlite://") as memory, memory.cycle_lock(), memory.cycle_lock():
        pass


@pytest.mark.postgres
def test_postgres_stores_leave_exclusion_to_the_connection_locks(pg_url: str) -> None:
    with Store(pg_url) as first, Store(pg_url) as second, first.cycle_lock(), second.cycle_lock():
        pass


def test_a_cycle_on_a_busy_store_is_skipped_and_touches_nothing(tmp_path: Path) -> None:
    config = fake_config(tmp_path)
    tracker = FakeTracker("alpha", three_epics("alpha"), Clock())
    with Store.from_settings(config.store) as holder, Store.from_settings(config.store) as store:
        deps = CycleDeps(store, connector_factory=lambda s: FakeConnector(tracker))  # type: ignore[arg-type,return-value]
        with holder.cycle_lock():
            outcome = run_cycle(config, deps, mode=WriteMode.APPLY, send_email=False)
        assert outcome.run_id is None and outcome.result is None
        assert outcome.skipped is not None and outcome.skipped.startswith("store busy")
        assert outcome.exit_status == exit_codes.BUSY == 3
        assert store.last_runs(10) == [] and tracker.pulls == [] and tracker.writes == []

        done = run_cycle(config, deps, mode=WriteMode.APPLY, send_email=False)
        assert done.exit_status == 0 and tracker.writes
        with holder.cycle_lock():  # undo writes to the trackers too: the same lock
            undo = run_undo(config, deps, run_id=done.run_id or 0, mode=WriteMode.APPLY)
        assert undo.run_id is None and undo.skipped is not None
        assert undo.exit_status == exit_codes.BUSY
        assert [run.id for run in store.last_runs(10)] == [done.run_id]


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_processes_on_one_sqlite_store_write_nothing_twice(tmp_path: Path) -> None:
    with sandbox_setup(tmp_path, size=200, seed=5) as env:
        slow = Faults(latency_ms=400)  # the first run is still running when the second starts
        env.jira.set_faults(slow)
        env.ado.set_faults(slow)
        command = [*(sys.executable, "-m", "spm_sync"), "run", "-c", str(env.config_path)]
        environment = {**os.environ, "PYTHONPATH": str(REPO)}
        first = subprocess.Popen(
            [*command, "--apply", "--no-email"],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            # Start the second run as soon as the first holds the store: its own start-up
            # (a few seconds) falls within the first's pull and write-back.
            holder = lock_path(tmp_path / "spm-sync.db")
            deadline = time.monotonic() + 120
            while f"pid {first.pid} " not in (holder.read_text() if holder.exists() else ""):
                assert first.poll() is None, first.communicate()
                assert time.monotonic() < deadline, "the first run never took the store"
                time.sleep(0.01)
            second = subprocess.run(
                [*command, "--apply", "--no-email", "--json", str(tmp_path / "second.json")],
                env=environment,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert first.poll() is None, ("the first run ended first", second.stdout, second.stderr)
            _, err = first.communicate(timeout=240)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
        assert first.returncode == 0, err
        assert second.returncode == exit_codes.BUSY, second.stdout + second.stderr
        assert "store busy" in second.stdout and "Traceback" not in second.stderr
        skipped = json.loads((tmp_path / "second.json").read_text(encoding="utf-8"))
        assert skipped["status"] == "skipped" and skipped["reason"].startswith("store busy")

        ado_fields = Counter((write.key, write.field) for write in env.ado.writes)
        jira_fields = Counter((write.key, write.field) for write in env.jira.writes)
        assert ado_fields and jira_fields
        assert max(ado_fields.values()) == 1 and max(jira_fields.values()) == 1
        # Azure DevOps takes its writes in `$batch` requests of up to 200 work items: the one
        # applying run sent as many as its items need, and the busy one sent none.
        patches = sum(n for route, n in env.ado.counts.items() if route.startswith("PATCH "))
        assert patches == -(-len({write.key for write in env.ado.writes}) // 200)
        with Store.from_settings(env.config().store) as store:
            runs = store.last_runs(10)
            assert [run.status for run in runs] == [RunStatus.SUCCEEDED]
            written = Counter(
                (row.write.connection, row.write.item_key, row.write.field)
                for row in store.audit_rows(runs[0].id, status="written")
            )
            assert written and max(written.values()) == 1


def test_a_second_run_in_process_after_the_first_is_not_busy(tmp_path: Path) -> None:
    """The lock goes with the cycle: sequential cycles in one process never see it."""
    config = fake_config(tmp_path)
    tracker = FakeTracker("alpha", three_epics("alpha"), Clock())
    with Store.from_settings(config.store) as store:
        deps = CycleDeps(store, connector_factory=lambda s: FakeConnector(tracker))  # type: ignore[arg-type,return-value]
        for _ in range(2):
            assert run_cycle(config, deps, mode=WriteMode.PLAN, send_email=False).exit_status == 0


def test_a_slot_is_claimed_once_on_both_backends(store: Store) -> None:
    slot = datetime(2026, 3, 4, 5, 0, tzinfo=UTC)
    assert store.claim_slot(slot, "every 60s", "w1") is True
    assert store.claim_slot(slot, "every 60s", "w2") is False
    store.record_slot_run(slot, 7, "ok")
    claim = store.slot_claim(slot)
    assert claim is not None and (claim.worker, claim.run_id, claim.outcome) == ("w1", 7, "ok")
    assert claim.slot == slot
    assert store.latest_claim("every 60s", before=slot) is None
    assert store.latest_claim("every 60s") == claim
