"""`spm-sync serve`: the schedule, the persistent job store, and a real serve process that
runs twice on an interval and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import create_engine, inspect

from spm_sync.config import Config
from spm_sync.scheduler import (
    JOB_ID,
    JOB_TABLE,
    MISFIRE_GRACE_SECONDS,
    build_scheduler,
    first_run_time,
    job_store,
    scheduled_cycle,
)
from spm_sync.store import RunStatus, Store
from tests.cycle_fixtures import fake_config, sandbox_setup

REPO = Path(__file__).resolve().parent.parent
SPM_SYNC = (sys.executable, "-m", "spm_sync")
NOW = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)  # a Wednesday


def schedule(tmp_path: Path, cron: str = "0 6 * * 1-5") -> Config:
    return fake_config(tmp_path, schedule={"cron": cron, "timezone": "Europe/Berlin"})


def stored_job(config: Config, next_run: datetime, trigger: object | None = None) -> None:
    """A job as an earlier `serve` left it in the job store."""
    jobs = job_store(config)
    scheduler = BackgroundScheduler()
    jobs.start(scheduler, "default")
    job = Job(
        scheduler,
        id=JOB_ID,
        func=scheduled_cycle,
        trigger=trigger or config.schedule.trigger(),
        executor="default",
        args=(),
        kwargs={},
        name="spm-sync cycle",
        misfire_grace_time=MISFIRE_GRACE_SECONDS,
        coalesce=True,
        max_instances=1,
        next_run_time=next_run,
    )
    jobs.add_job(job)
    jobs.shutdown()


def test_the_job_runs_one_at_a_time_coalesced_on_the_crontab_schedule(tmp_path: Path) -> None:
    config = schedule(tmp_path)
    scheduler = build_scheduler(config, interval_seconds=None, run_now=False, clock=lambda: NOW)
    job = scheduler.get_job(JOB_ID)
    assert (job.coalesce, job.max_instances) == (True, 1)
    assert job.misfire_grace_time == MISFIRE_GRACE_SECONDS
    # Crontab weekdays 1-5 are Monday to Friday: the next run after Wednesday 10:30 Berlin
    # time is Thursday 06:00 there.
    assert job.next_run_time == datetime(2026, 3, 5, 5, 0, tzinfo=UTC)
    assert job.next_run_time.astimezone(UTC).weekday() == 3


def test_a_run_missed_while_down_is_kept_for_the_restart(tmp_path: Path) -> None:
    config = schedule(tmp_path)
    missed = datetime(2026, 3, 4, 5, 0, tzinfo=UTC)  # this morning's run, while we were down
    stored_job(config, missed)
    jobs = job_store(config)
    jobs.start(BackgroundScheduler(), "default")
    trigger = config.schedule.trigger()
    assert first_run_time(jobs, trigger, NOW, run_now=False) == missed
    assert first_run_time(jobs, trigger, NOW, run_now=True) == NOW
    # A changed schedule starts from the new one.
    other = schedule(tmp_path, "0 7 * * *").schedule.trigger()
    assert first_run_time(jobs, other, NOW, run_now=False) == datetime(2026, 3, 5, 6, tzinfo=UTC)


def test_the_job_table_lives_in_the_store_database(tmp_path: Path) -> None:
    config = schedule(tmp_path)
    stored_job(config, NOW)
    Store.from_settings(config.store).close()
    engine = create_engine(config.store.url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {JOB_TABLE, "runs", "work_items"} <= tables


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
