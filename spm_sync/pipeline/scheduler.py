"""`spm-sync serve`: cycles on the config's schedule until SIGTERM/SIGINT (APScheduler 3).

What is guaranteed:

- **Each slot runs at most once per store**, however many workers serve it. A slot is an
  instant of the schedule: a fire time of the config's cron in its time zone (crontab weekday
  numbering, `ScheduleSettings.trigger()`), or for `--every SECONDS` a multiple of SECONDS
  since the Unix epoch, so every worker computes the same instants whenever it started. The
  worker that fires a slot first claims it by inserting its row into `schedule_slots` (keyed
  by the slot, migration 0003); the others find the row taken and leave the slot alone. So a
  slot is never run twice: not by two workers firing together, and not by a second worker
  that fires after the first has already finished (one run row, one report email per slot).
- Each worker keeps its schedule in its own in-memory job store. The workers used to share
  an `SQLAlchemyJobStore` table, which APScheduler 3 documents as unsafe (a job store must
  never be shared between schedulers); the old `spm_sync_schedule` table is no longer read.
- **A slot missed while no worker was up is made up once** when a worker starts, if it is at
  most `MISFIRE_GRACE_SECONDS` late, nobody claimed it, and the store holds a claim of an
  earlier slot of the same schedule (the schedule was running before; a first start or a
  changed schedule waits for its next slot). Later than that the next slot catches up: the
  pull is incremental, so nothing is lost. Of several missed slots only the latest runs.
- **One cycle at a time per worker**: a slot that comes while this worker's cycle still runs
  is not taken by it (another idle worker may take it), never stacked. On SQLite the store
  itself admits one cycle at a time (`Store.cycle_lock`), so a `spm-sync run` by hand during
  a slot makes one of the two skip with "store busy"; on PostgreSQL the per-connection
  advisory locks keep a hand-run cycle and a slot off the same tracker connection.
- A worker that crashes mid-cycle leaves its slot claimed; the next slot (on any worker)
  closes the crashed run and catches up. `--run-now` runs one extra cycle at start, outside
  the slots (the locks above still apply).
- SIGTERM/SIGINT: the running cycle is asked to stop at its next safe point (`StopSignal`:
  between stages, pull pages and write batches; never between a write and its audit row), the
  scheduler stops taking jobs, and `serve` returns 0 once the cycle has ended.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_SCHEDULER_STARTED, SchedulerEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger

from connectors.registry import ConnectorFactory, default_connector_factory
from spm_sync.config.model import Config
from spm_sync.core import exit_codes
from spm_sync.core.errors import describe
from spm_sync.pipeline.cycle import CycleDeps, CycleOutcome, log_traceback, run_cycle
from spm_sync.pipeline.progress import LogProgress, kv
from spm_sync.pipeline.stopping import StopSignal, stop_on_signals
from spm_sync.pipeline.store_access import StoreUnavailable, open_store
from spm_sync.store import Store

__all__ = [
    "MISFIRE_GRACE_SECONDS",
    "EpochInterval",
    "Schedule",
    "Worker",
    "build_scheduler",
    "first_run_time",
    "serve",
]

log = logging.getLogger(__name__)

JOB_ID = "spm-sync-cycle"
RUN_NOW_JOB_ID = "spm-sync-run-now"
MISFIRE_GRACE_SECONDS = 6 * 3600
"""A scheduled run up to 6 hours late still runs (a worker restarted after a nightly slot);
later than that it is skipped: a report mailed in the middle of the working day, with writes
to the trackers while people work in them, is worse than waiting for the next slot."""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class EpochInterval(BaseTrigger):
    """Every `seconds`, at the multiples of it since the Unix epoch.

    APScheduler's `IntervalTrigger` counts from its start date (each worker's own start) and
    from the previous fire time, so two workers would never agree on the instants. Integer
    arithmetic on `timedelta`s, because float timestamps near 1.8e9 lose the microseconds.
    """

    def __init__(self, seconds: int, timezone: ZoneInfo) -> None:
        self.step = timedelta(seconds=seconds)
        self.timezone = timezone

    def slot_at(self, now: datetime) -> datetime:
        """The latest fire time at or before `now`."""
        return EPOCH + ((now - EPOCH) // self.step) * self.step

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        due = -((EPOCH - now) // self.step)  # ceil: a fire time at or after now
        if previous_fire_time is not None:
            due = max(due, (previous_fire_time - EPOCH) // self.step + 1)
        return (EPOCH + due * self.step).astimezone(self.timezone)

    def __repr__(self) -> str:
        return f"<EpochInterval every {self.step.total_seconds():g}s>"


@dataclass(frozen=True)
class Schedule:
    """The trigger that defines the slots, and the name claims are recorded under."""

    trigger: BaseTrigger
    name: str

    @classmethod
    def from_config(cls, config: Config, interval_seconds: int | None = None) -> Schedule:
        settings = config.schedule
        if interval_seconds is not None:
            zone = ZoneInfo(settings.timezone)
            return cls(EpochInterval(interval_seconds, zone), f"every {interval_seconds}s")
        return cls(settings.trigger(), f"cron {settings.cron} ({settings.timezone})")

    def latest(self, now: datetime) -> datetime | None:
        """The slot at or before `now`, if it is at most `MISFIRE_GRACE_SECONDS` old."""
        earliest = now - timedelta(seconds=MISFIRE_GRACE_SECONDS)
        if isinstance(self.trigger, EpochInterval):
            slot = self.trigger.slot_at(now)
            return slot if slot >= earliest else None
        latest = None
        fire = self.trigger.get_next_fire_time(None, earliest)
        while fire is not None and fire <= now:
            latest = fire
            fire = self.trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
        return latest.astimezone(UTC) if latest is not None else None

    def next_after(self, now: datetime) -> datetime | None:
        fire = self.trigger.get_next_fire_time(None, now)
        return fire.astimezone(UTC) if fire is not None else None


def first_run_time(store: Store, schedule: Schedule, now: datetime) -> datetime | None:
    """`now` when a slot missed while no worker was up is to be made up (see the module
    docstring), else None: the trigger's next slot."""
    missed = schedule.latest(now)
    if missed is None or store.slot_claim(missed) is not None:
        return None
    if store.latest_claim(schedule.name, before=missed) is None:
        return None
    return now


class Worker:
    """Runs the slots this worker claims, one cycle at a time, and can be asked to stop."""

    def __init__(
        self,
        config: Config,
        store: Store,
        connector_factory: ConnectorFactory,
        schedule: Schedule,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        name: str | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.connector_factory = connector_factory
        self.schedule = schedule
        self.clock = clock
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.stop = StopSignal()
        self._busy = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self.runs = 0

    def run_due_slot(self) -> None:
        """The recurring job: claim and run the slot that is due now."""
        slot = self.schedule.latest(self.clock())
        if slot is None:  # fired more than the grace late: the next slot catches up
            log.warning(kv("serve.slot_too_late", schedule=self.schedule.name))
            return
        self._exclusively(lambda: self._run_slot(slot))

    def run_now(self) -> None:
        """`--run-now`: one cycle outside the slots."""
        self._exclusively(lambda: self._cycle(slot=None))

    def _exclusively(self, work: Callable[[], object]) -> None:
        if self.stop.is_set:
            return
        if not self._busy.acquire(blocking=False):
            log.warning(kv("serve.busy", reason="this worker's previous cycle is still running"))
            return
        self._idle.clear()
        try:
            work()
        except Exception as error:  # the store went away, ...: the next slot tries again
            log.error(kv("serve.run", status="failed", error=describe(error)))
            log_traceback("the cycle failed")
        finally:
            self._busy.release()
            self._idle.set()

    def _run_slot(self, slot: datetime) -> None:
        if not self.store.claim_slot(slot, self.schedule.name, self.name):
            claim = self.store.slot_claim(slot)
            by = claim.worker if claim is not None else "another worker"
            log.info(kv("serve.slot_taken", slot=slot.isoformat(), by=by))
            return
        log.info(kv("serve.slot_claimed", slot=slot.isoformat(), worker=self.name))
        outcome = self._cycle(slot=slot)
        self.store.record_slot_run(slot, outcome.run_id, _status(outcome))

    def _cycle(self, slot: datetime | None) -> CycleOutcome:
        started = time.monotonic()
        deps = CycleDeps(
            self.store,
            connector_factory=self.connector_factory,
            progress=LogProgress(),
            stop=self.stop,
        )
        try:
            outcome = run_cycle(self.config, deps, trigger="schedule")
        finally:
            self.runs += 1
        log.info(
            kv(
                "serve.run",
                run=outcome.run_id,
                slot=slot.isoformat() if slot else "now",
                status=_status(outcome),
                seconds=time.monotonic() - started,
            )
        )
        if outcome.skipped:
            log.warning(kv("serve.skipped", reason=outcome.skipped))
        return outcome

    def wait_idle(self, timeout: float | None = None) -> bool:
        return self._idle.wait(timeout)


def _status(outcome: CycleOutcome) -> str:
    if outcome.result is not None:
        return outcome.result.status
    return "stopped" if outcome.stopped else "skipped"


def build_scheduler(worker: Worker, *, run_now: bool) -> BlockingScheduler:
    """The worker's own scheduler: an in-memory job store (never shared, see the module
    docstring), the recurring slot job and, with `run_now`, a one-off cycle at once. Two
    executor threads so that a job due while a cycle runs is not queued behind it (it finds
    the worker busy and skips) and so never runs late."""
    schedule = worker.schedule
    zone = getattr(schedule.trigger, "timezone", None) or ZoneInfo(worker.config.schedule.timezone)
    scheduler = BlockingScheduler(
        jobstores={"default": MemoryJobStore()},
        executors={"default": ThreadPoolExecutor(max_workers=2)},
        timezone=zone,
    )
    now = worker.clock()
    next_run = first_run_time(worker.store, schedule, now)
    if next_run is not None:
        log.info(kv("serve.make_up", slot=_iso(schedule.latest(now)), schedule=schedule.name))
    else:
        next_run = schedule.next_after(now)
    scheduler.add_job(
        worker.run_due_slot,
        trigger=schedule.trigger,
        id=JOB_ID,
        name="spm-sync slot",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=MISFIRE_GRACE_SECONDS,
        next_run_time=next_run,
    )
    if run_now:
        scheduler.add_job(worker.run_now, id=RUN_NOW_JOB_ID, name="spm-sync run now")
    return scheduler


def serve(
    config: Config,
    *,
    interval_seconds: int | None = None,
    run_now: bool = False,
    connector_factory: ConnectorFactory | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit status (0 after a clean stop, 2 when the
    store cannot be opened)."""
    _quiet_libraries()
    try:
        with open_store(config) as store:
            return _serve(config, store, interval_seconds, run_now, connector_factory, clock)
    except StoreUnavailable as error:
        log.error(kv("serve.cannot_start", error=str(error)))
        return exit_codes.CANNOT_START


def _serve(
    config: Config,
    store: Store,
    interval_seconds: int | None,
    run_now: bool,
    connector_factory: ConnectorFactory | None,
    clock: Callable[[], datetime],
) -> int:
    schedule = Schedule.from_config(config, interval_seconds)
    factory = connector_factory or default_connector_factory()
    worker = Worker(config, store, factory, schedule, clock=clock)
    scheduler = build_scheduler(worker, run_now=run_now)

    def on_signal(name: str) -> None:
        log.info(kv("serve.stopping", signal=name, cycle_running=not worker.wait_idle(0)))
        if scheduler.running:
            scheduler.shutdown(wait=False)

    def on_started(_event: SchedulerEvent) -> None:
        # A signal that came before the scheduler ran could not stop it; this does.
        if worker.stop.is_set:
            scheduler.shutdown(wait=False)

    scheduler.add_listener(on_started, EVENT_SCHEDULER_STARTED)
    try:
        with stop_on_signals(worker.stop, on_signal):
            log.info(
                kv(
                    "serve.start",
                    schedule=schedule.name,
                    worker=worker.name,
                    next_slot=_iso(schedule.next_after(clock())),
                )
            )
            scheduler.start()
        worker.wait_idle()
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=True)
    log.info(kv("serve.stopped", runs=worker.runs))
    return exit_codes.OK


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _quiet_libraries() -> None:
    """A log line per run of our own; APScheduler's per-job chatter only on -vv."""
    ours = logging.getLogger("spm_sync")
    if ours.getEffectiveLevel() > logging.INFO:
        ours.setLevel(logging.INFO)
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
