"""`spm-sync serve`: cycles on the config's schedule until SIGTERM/SIGINT (APScheduler 3).

- `BlockingScheduler` with the config's cron and time zone (`ScheduleSettings.trigger()`, which
  numbers crontab weekdays as crontab does). `--every SECONDS` replaces the cron with an
  interval, for trying things out and for tests (crontab has no seconds); `--run-now` also
  starts a cycle at once.
- Persistent job store: an `SQLAlchemyJobStore` table (`spm_sync_schedule`) in the store's own
  database, so the next run time survives restarts: a run missed while the worker was down is
  made up once on start (`coalesce=True`) if it is at most `MISFIRE_GRACE_SECONDS` late; a
  later one is skipped and the next scheduled run catches up (the pull is incremental, so
  nothing is lost). The stored next run time is kept across restarts unless the schedule
  changed.
- One cycle at a time (`max_instances=1`, one executor thread): a cycle still running when the
  next is due makes that one skip, it never stacks.
- SIGTERM/SIGINT: the running cycle is asked to stop at its next safe point (`StopSignal`:
  between stages, pull pages and write batches; never between a write and its audit row), the
  scheduler stops taking jobs, and `serve` returns 0 once the cycle has ended.

The job store keeps a reference to a module-level function (`scheduled_cycle`), not an object:
APScheduler pickles jobs into the table, so the worker it should run on is looked up when the
job fires. Several workers may share one PostgreSQL store and this table: whichever picks a
due job up first runs it (it moves the stored next run time on), and the per-connection
advisory locks keep two workers off one connection should both start together. SQLite serves
a single worker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_SCHEDULER_STARTED, SchedulerEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from connectors.registry import ConnectorFactory, default_connector_factory
from spm_sync.config import Config
from spm_sync.cycle import CycleDeps, run_cycle
from spm_sync.progress import LogProgress, kv
from spm_sync.pull import describe
from spm_sync.stopping import StopSignal, stop_on_signals
from spm_sync.store import Store
from spm_sync.store.engine import build_engine, normalize_url

__all__ = ["MISFIRE_GRACE_SECONDS", "Worker", "build_scheduler", "scheduled_cycle", "serve"]

log = logging.getLogger(__name__)

JOB_ID = "spm-sync-cycle"
JOB_TABLE = "spm_sync_schedule"
MISFIRE_GRACE_SECONDS = 6 * 3600
"""A scheduled run up to 6 hours late still runs (a worker restarted after a nightly slot);
later than that it is skipped: a report mailed in the middle of the working day, with writes
to the trackers while people work in them, is worse than waiting for the next slot."""


class Worker:
    """Runs cycles for the scheduler, one at a time, and can be asked to stop."""

    def __init__(self, config: Config, store: Store, connector_factory: ConnectorFactory) -> None:
        self.config = config
        self.store = store
        self.connector_factory = connector_factory
        self.stop = StopSignal()
        self._idle = threading.Event()
        self._idle.set()
        self.runs = 0

    def run_once(self) -> None:
        if self.stop.is_set:
            return
        self._idle.clear()
        started = time.monotonic()
        try:
            deps = CycleDeps(
                self.store,
                connector_factory=self.connector_factory,
                progress=LogProgress(),
                stop=self.stop,
            )
            outcome = run_cycle(self.config, deps, trigger="schedule")
            status = (
                outcome.result.status
                if outcome.result
                else "stopped"
                if outcome.stopped
                else "skipped"
            )
            log.info(
                kv(
                    "serve.run",
                    run=outcome.run_id,
                    status=status,
                    seconds=time.monotonic() - started,
                )
            )
        except Exception as error:  # the next scheduled run tries again
            log.exception(kv("serve.run", status="failed", error=describe(error)))
        finally:
            self.runs += 1
            self._idle.set()

    def wait_idle(self, timeout: float | None = None) -> bool:
        return self._idle.wait(timeout)


_active: Worker | None = None


def scheduled_cycle() -> None:
    """The job the job store refers to (by name): one cycle on the serving worker."""
    worker = _active
    if worker is None:
        log.warning(kv("serve.job_without_worker"))
        return
    worker.run_once()


def schedule_trigger(config: Config, interval_seconds: int | None) -> BaseTrigger:
    zone = ZoneInfo(config.schedule.timezone)
    if interval_seconds is not None:
        return IntervalTrigger(seconds=interval_seconds, timezone=zone)
    return config.schedule.trigger()


def job_store(config: Config) -> SQLAlchemyJobStore:
    """The scheduler's table, in the same database (and schema) as the store."""
    settings = config.store
    url = normalize_url(settings.connect_url(), settings.db_schema)
    return SQLAlchemyJobStore(engine=build_engine(url), tablename=JOB_TABLE)


def first_run_time(
    jobs: SQLAlchemyJobStore, trigger: BaseTrigger, now: datetime, run_now: bool
) -> datetime | None:
    """Keep the stored next run time (a missed run is made up) unless the schedule changed."""
    if run_now:
        return now
    try:
        stored = jobs.lookup_job(JOB_ID)
    except Exception:  # a job pickled by another version: replaced below
        stored = None
    if stored is not None and repr(stored.trigger) == repr(trigger) and stored.next_run_time:
        next_run: datetime = stored.next_run_time
        return next_run
    return trigger.get_next_fire_time(None, now)


def build_scheduler(
    config: Config, *, interval_seconds: int | None, run_now: bool, clock: Callable[[], datetime]
) -> BlockingScheduler:
    zone = ZoneInfo(config.schedule.timezone)
    jobs = job_store(config)
    scheduler = BlockingScheduler(
        jobstores={"default": jobs},
        executors={"default": ThreadPoolExecutor(max_workers=1)},
        timezone=zone,
    )
    jobs.start(scheduler, "default")  # creates the table, so the stored job can be read now
    trigger = schedule_trigger(config, interval_seconds)
    next_run = first_run_time(jobs, trigger, clock().astimezone(zone), run_now)
    scheduler.add_job(
        scheduled_cycle,
        trigger=trigger,
        id=JOB_ID,
        name="spm-sync cycle",
        replace_existing=True,
        next_run_time=next_run,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=MISFIRE_GRACE_SECONDS,
    )
    return scheduler


def serve(
    config: Config,
    *,
    interval_seconds: int | None = None,
    run_now: bool = False,
    connector_factory: ConnectorFactory | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit status (0 after a clean stop)."""
    global _active
    _quiet_libraries()
    with Store.from_settings(config.store) as store:
        worker = Worker(config, store, connector_factory or default_connector_factory())
        scheduler = build_scheduler(
            config, interval_seconds=interval_seconds, run_now=run_now, clock=clock
        )

        def on_signal(name: str) -> None:
            log.info(kv("serve.stopping", signal=name, cycle_running=not worker.wait_idle(0)))
            if scheduler.running:
                scheduler.shutdown(wait=False)

        def on_started(_event: SchedulerEvent) -> None:
            # A signal that came before the scheduler ran could not stop it; this does.
            if worker.stop.is_set:
                scheduler.shutdown(wait=False)

        scheduler.add_listener(on_started, EVENT_SCHEDULER_STARTED)
        _active = worker
        try:
            with stop_on_signals(worker.stop, on_signal):
                job = scheduler.get_job(JOB_ID)
                log.info(
                    kv(
                        "serve.start",
                        schedule=_describe(config, interval_seconds),
                        next_run=_next(job),
                    )
                )
                scheduler.start()
            worker.wait_idle()
        finally:
            _active = None
            if scheduler.running:
                scheduler.shutdown(wait=True)
    log.info(kv("serve.stopped", runs=worker.runs))
    return 0


def _describe(config: Config, interval_seconds: int | None) -> str:
    if interval_seconds is not None:
        return f"every {interval_seconds}s"
    return f"{config.schedule.cron} ({config.schedule.timezone})"


def _next(job: Any) -> datetime | None:
    return getattr(job, "next_run_time", None) if job is not None else None


def _quiet_libraries() -> None:
    """A log line per run of our own; APScheduler's per-job chatter only on -vv."""
    ours = logging.getLogger("spm_sync")
    if ours.getEffectiveLevel() > logging.INFO:
        ours.setLevel(logging.INFO)
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
