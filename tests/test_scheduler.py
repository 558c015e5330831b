"""`spm-sync serve`: slots from the schedule (cron, or `--every` aligned to the epoch), each
slot claimed once in the store, a missed slot made up from the store's claims, and a real
serve process that runs twice on an interval and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from connectors.base import Connector
from spm_sync.config.model import Config
from spm_sync.pipeline.scheduler import (
    JOB_ID,
    MISFIRE_GRACE_SECONDS,
    EpochInterval,
    Schedule,
    Worker,
    build_scheduler,
    first_run_time,
)
from spm_sync.store import RunStatus, Store
from tests.cycle_fixtures import (
    Clock,
    FakeConnector,
    FakeTracker,
    fake_config,
    sandbox_setup,
    three_epics,
)

REPO = Path(__file__).resolve().parent.parent
SPM_SYNC = (sys.executable, "-m", "spm_sync")
NOW = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)  # a Wednesday
BERLIN = ZoneInfo("Europe/Berlin")


def schedule(tmp_path: Path, cron: str = "0 6 * * 1-5") -> Config:
    return fake_config(tmp_path, schedule={"cron": cron, "timezone": "Europe/Berlin"})


def worker(config: Config, store: Store, clock: object = lambda: NOW, name: str = "w1") -> Worker:
    trackers = {
        c.name: FakeTracker(c.name, three_epics(c.name), Clock()) for c in config.connections
    }

    def factory(settings: object) -> Connector:
        return FakeConnector(trackers[settings.name])  # type: ignore[attr-defined,return-value]

    return Worker(config, store, factory, Schedule.from_config(config), clock=clock, name=name)  # type: ignore[arg-type]


def test_every_seconds_slots_are_multiples_since_the_epoch_whenever_a_worker_starts() -> None:
    every = EpochInterval(90, BERLIN)
    for started in (NOW, NOW + timedelta(seconds=17), NOW + timedelta(seconds=89.999)):
        first = every.get_next_fire_time(None, started)
        assert first is not None and first >= started
        assert (first - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() % 90 == 0
        assert first - started < timedelta(seconds=90)
    slot = every.get_next_fire_time(None, NOW)
    assert slot is not None
    assert every.get_next_fire_time(slot, slot) == slot + timedelta(seconds=90)
    # A late previous run (a make-up) does not shift the grid.
    late = slot + timedelta(seconds=31)
    assert every.get_next_fire_time(late, late) == slot + timedelta(seconds=90)
    assert every.slot_at(slot + timedelta(seconds=89)) == slot == every.slot_at(slot)


def test_the_latest_slot_of_a_cron_schedule_in_its_time_zone(tmp_path: Path) -> None:
    cron = Schedule.from_config(schedule(tmp_path))
    assert cron.name == "cron 0 6 * * 1-5 (Europe/Berlin)"
    # 06:00 Berlin is 05:00 UTC in March; 4.5 hours ago is within the grace.
    assert cron.latest(NOW) == datetime(2026, 3, 4, 5, 0, tzinfo=UTC)
    assert cron.latest(datetime(2026, 3, 4, 11, 1, tzinfo=UTC)) is None  # over 6 hours late
    assert cron.next_after(NOW) == datetime(2026, 3, 5, 5, 0, tzinfo=UTC)
    assert Schedule.from_config(schedule(tmp_path), 60).name == "every 60s"


def test_the_slot_job_runs_one_at_a_time_coalesced_on_the_crontab_schedule(
    tmp_path: Path,
) -> None:
    config = schedule(tmp_path)
    with Store.from_settings(config.store) as store:
        scheduler = build_scheduler(worker(config, store), run_now=False)  # not started
        job = scheduler.get_job(JOB_ID)
        assert (job.coalesce, job.max_instances) == (True, 1)
        assert job.misfire_grace_time == MISFIRE_GRACE_SECONDS
        # Weekdays 1-5 are Monday to Friday: after Wednesday 10:30 Berlin time comes
        # Thursday 06:00 there. No claim yet, so this morning's slot is not made up.
        assert job.next_run_time == datetime(2026, 3, 5, 5, 0, tzinfo=UTC)
        assert job.next_run_time.astimezone(UTC).weekday() == 3
        assert [j.id for j in scheduler.get_jobs()] == [JOB_ID]
        store.claim_slot(
            datetime(2026, 3, 3, 5, 0, tzinfo=UTC), "cron 0 6 * * 1-5 (Europe/Berlin)", "w0"
        )
        again = build_scheduler(worker(config, store), run_now=True).get_job(JOB_ID)
        assert again.next_run_time == NOW  # yesterday's slot was claimed: make up today's


def test_a_slot_missed_while_down_is_made_up_once_from_the_stores_claims(tmp_path: Path) -> None:
    config = schedule(tmp_path)
    cron = Schedule.from_config(config)
    missed = datetime(2026, 3, 4, 5, 0, tzinfo=UTC)  # this morning's slot, while we were down
    with Store.from_settings(config.store) as store:
        assert first_run_time(store, cron, NOW) is None  # the schedule never ran here
        assert store.claim_slot(missed - timedelta(days=1), cron.name, "w0")  # yesterday's
        assert first_run_time(store, cron, NOW) == NOW
        # Too late to make up: the next slot catches up.
        assert first_run_time(store, cron, missed + timedelta(hours=6, minutes=1)) is None
        # A changed schedule starts from its own next slot.
        other = Schedule.from_config(schedule(tmp_path, "0 7 * * *"))
        assert first_run_time(store, other, NOW) is None
        # Another worker already made it up.
        assert store.claim_slot(missed, cron.name, "w2")
        assert first_run_time(store, cron, NOW) is None


def test_a_slot_runs_once_even_when_the_second_worker_fires_after_the_first_finished(
    tmp_path: Path,
) -> None:
    config = schedule(tmp_path)
    slot = datetime(2026, 3, 4, 5, 0, tzinfo=UTC)
    with Store.from_settings(config.store) as one, Store.from_settings(config.store) as two:
        first, second = worker(config, one, name="w1"), worker(config, two, name="w2")
        first.run_due_slot()
        assert len(one.last_runs(10)) == 1
        second.run_due_slot()  # the same slot, after the first worker's cycle ended
        runs = one.last_runs(10)
        assert len(runs) == 1 and runs[0].trigger == "schedule"
        claim = one.slot_claim(slot)
        assert claim is not None and claim.worker == "w1" and claim.run_id == runs[0].id
        assert claim.outcome == "ok"
        assert (first.runs, second.runs) == (1, 0)


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_serve_runs_on_its_schedule_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    with sandbox_setup(tmp_path, size=200) as env:
        config = env.config()
        process = subprocess.Popen(
            [*SPM_SYNC, "serve", "-c", str(env.config_path), "--every", "2", "--run-now"],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            with Store.from_settings(config.store) as store:
                deadline = time.monotonic() + 150
                while len(store.last_runs(10, status=RunStatus.SUCCEEDED)) < 2:
                    assert process.poll() is None, process.stderr.read()  # type: ignore[union-attr]
                    assert time.monotonic() < deadline, "serve did not run twice"
                    time.sleep(0.2)
                process.send_signal(signal.SIGTERM)
                _, log = process.communicate(timeout=60)
                assert process.returncode == 0, log
                assert store.unfinished_runs() == []
                runs = store.last_runs(20)
                for run in runs:
                    assert run.trigger == "schedule"
                    stopped = run.status is RunStatus.FAILED and "stopped on request" in run.error
                    assert run.status is RunStatus.SUCCEEDED or stopped, run
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert log.count("event=serve.run ") >= 2
        assert "event=serve.stopped" in log
        assert len(env.mailbox.messages) >= 2
        assert "sandbox-token" not in log and "token" not in log.lower()
