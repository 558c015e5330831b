"""Stage 1, pull: every connection's changed items into the store, in parallel.

Per connection (see `pull_connection`):
- `since` = the stored watermark minus `overlap_minutes`; no watermark means a full sync;
- items stream from the connector into the store in batches (`Store.upsert_items`);
- the watermark (the newest `updated` seen) advances only after every item of the connection
  is stored, so a pull that fails or is stopped halfway is simply repeated next time;
- deletions: a full sync knows the whole scope already; an incremental run asks the connector
  for every key in scope (`scan_keys`) once per `deletion_scan_hours`; items gone from the
  scope are flagged in the store (kept for the audit trail and undo) and excluded from
  alignment;
- the mass-deletion guard (`spm_sync.pipeline.deletion_guard`): an answer that would flag more than
  `max_deletion_share` of the stored items flags none. The items pulled are kept, the stored
  portfolio is still reported, but the scan counts as not done (the next run scans again, a
  full sync is repeated), the connection gets no writes this run (its answer may be a
  permission change hiding most items; ranking on it could do harm) and the run reports the
  problem;
- then the parents and OKR link targets its scope leaves out, as context items for alignment
  (`spm_sync.pipeline.context_pull`); failing to read them is a warning, never the
  connection's error;
- then its status history (`spm_sync.pipeline.history_pull`), only when the pull succeeded; a
  history that fails is a warning of the connection, never its error;
- whatever goes wrong is recorded as this connection's error; the other connections go on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from connectors.base import Connector, ConnectorError
from connectors.registry import ConnectorFactory
from spm_sync.config.connections import AzureDevOpsConnection, JiraConnection
from spm_sync.core.domain import WorkItem
from spm_sync.core.errors import describe
from spm_sync.pipeline.context_pull import ContextOutcome, pull_context
from spm_sync.pipeline.deletion_guard import DeletionGuard
from spm_sync.pipeline.history_pull import HistoryOutcome, pull_status_history
from spm_sync.pipeline.progress import CycleProgress
from spm_sync.pipeline.stopping import CycleStopped, StopSignal
from spm_sync.store import MissingScan, StageStatus, Store, SyncState, SyncStats

log = logging.getLogger(__name__)

PULL = "pull"
MAX_PARALLEL_CONNECTIONS = 4
"""Connections pulled at once; each connector runs its own pool of parallel requests."""
STOP_CHECK_EVERY = 500
"""Items between two looks at the stop signal during a pull (one store batch)."""

Clock = Callable[[], datetime]


@dataclass
class ConnectionRun:
    """One connection's part of a cycle: its connector and what happened to it."""

    settings: JiraConnection | AzureDevOpsConnection
    connector: Connector | None = None
    skipped: str | None = None
    """Why this cycle leaves the connection alone (another worker holds its lock)."""
    since: datetime | None = None
    pulled: int = 0
    deleted_detected: int = 0
    deletions: MissingScan | None = None
    """This run's look for deleted items (a full sync, or the key scan when due)."""
    pull_seconds: float = 0.0
    apply_seconds: float = 0.0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    pulled_ok: bool = False
    history: HistoryOutcome | None = None
    """This run's status history pull; None when none was made (pull failed, no history)."""
    context: ContextOutcome | None = None
    """This run's fetch of context items; None when none was made."""

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def sync(self) -> Literal["full", "incremental"]:
        return "full" if self.since is None else "incremental"

    @property
    def pulled_cleanly(self) -> bool:
        """Pulled completely in this run and nothing failed after: its stored items are
        current (a cycle where no connection was pulled cleanly has failed)."""
        return self.pulled_ok and self.skipped is None and self.error is None

    @property
    def deletions_held_back(self) -> bool:
        """The mass-deletion guard refused this run's deletions (see the module docstring)."""
        return self.deletions is not None and self.deletions.held_back

    @property
    def usable(self) -> bool:
        """Pulled completely in this run, its deletions trusted: safe to plan and write for."""
        return self.pulled_cleanly and not self.deletions_held_back

    def all_warnings(self) -> list[str]:
        found = list(self.connector.warnings) if self.connector is not None else []
        return list(dict.fromkeys([*found, *self.warnings]))


@dataclass
class _Seen:
    count: int = 0
    newest: datetime | None = None
    keys: set[str] = field(default_factory=set)


def _tracked(
    items: Iterable[WorkItem],
    seen: _Seen,
    connection: str,
    progress: CycleProgress,
    stop: StopSignal,
) -> Iterator[WorkItem]:
    for item in items:
        seen.count += 1
        seen.keys.add(item.key)
        if seen.newest is None or item.updated > seen.newest:
            seen.newest = item.updated
        if seen.count % STOP_CHECK_EVERY == 0:
            progress.pulled(connection, seen.count)
            stop.check(f"while pulling {connection}")
        yield item
    progress.pulled(connection, seen.count)


def pull_connection(
    store: Store,
    run_id: int,
    run: ConnectionRun,
    factory: ConnectorFactory,
    *,
    clock: Clock,
    progress: CycleProgress,
    stop: StopSignal,
) -> None:
    """Pull one connection into the store; failures end up in `run.error`, never raised
    (except `CycleStopped`, which ends the cycle)."""
    name = run.name
    started = time.monotonic()
    store.start_stage(run_id, PULL, name)
    stopped: CycleStopped | None = None
    try:
        run.connector = factory(run.settings)
        previous = store.get_sync_state(name) or SyncState(name)
        if previous.watermark is not None:
            run.since = previous.watermark - timedelta(minutes=run.settings.overlap_minutes)
        progress.pull_started(name, run.since)
        seen = _Seen()
        store.upsert_items(
            _tracked(run.connector.pull(run.since), seen, name, progress, stop), run_id
        )
        run.pulled = seen.count
        state = _reconcile(store, run_id, run, previous, seen, clock(), stop)
        store.save_sync_state(state)
        run.pulled_ok = True
        _follow_context(store, run_id, run, seen.keys, stop)
        _read_history(store, run, seen.keys, stop)
    except CycleStopped as error:
        run.error = f"pull stopped on request ({error.where})"
        stopped = error
    except Exception as error:
        if not isinstance(error, ConnectorError):
            log.exception("pulling %s failed", name)
        run.error = describe(error).removeprefix(f"{name}: ")  # the report names it already
    finally:
        run.pull_seconds = time.monotonic() - started
        _record(store, run_id, run)
        progress.pull_finished(
            name,
            items=run.pulled,
            sync=run.sync,
            deleted=run.deleted_detected,
            deletions_held_back=_held_back(run),
            status_changes=run.history.stored if run.history is not None else None,
            requests=run.connector.stats.requests if run.connector else 0,
            seconds=run.pull_seconds,
            error=run.error,
        )
    if stopped is not None:
        raise stopped


def _follow_context(
    store: Store, run_id: int, run: ConnectionRun, pulled: set[str], stop: StopSignal
) -> None:
    """Context items for what this run pulled; every scope item's references on a full sync
    or when items left the scope (their children may need them as context now)."""
    assert run.connector is not None
    full = run.since is None
    everything = full or run.deleted_detected > 0
    try:
        run.context = pull_context(
            store,
            run_id,
            run.connector,
            run.settings.okr.link_types,
            changed_keys=None if everything else pulled,
            refresh=full,
            stop=stop,
        )
    except CycleStopped:
        raise
    except Exception as error:
        if not isinstance(error, ConnectorError):
            log.exception("%s: reading parents outside the scope failed", run.name)
        reason = describe(error).removeprefix(f"{run.name}: ")
        run.warnings.append(
            f"parents outside the scope not read: {reason}; items under them may be reported "
            "as orphans until they change or the next full sync reads them"
        )
        return
    if run.context is not None:
        run.warnings.extend(run.context.warnings())


def _read_history(store: Store, run: ConnectionRun, keys: set[str], stop: StopSignal) -> None:
    """The connection's status history after its pull (see `spm_sync.pipeline.history_pull`)."""
    assert run.connector is not None
    run.history = pull_status_history(store, run.connector, keys, pulled_since=run.since, stop=stop)
    if run.history is not None and run.history.error is not None:
        reason = describe(run.history.error).removeprefix(f"{run.name}: ")
        run.warnings.append(
            f"status history not read completely: {reason}; flow metrics use the history "
            "stored before, the next run reads it again"
        )
        log.warning("%s: status history not read: %s", run.name, reason)


def _reconcile(
    store: Store,
    run_id: int,
    run: ConnectionRun,
    previous: SyncState,
    seen: _Seen,
    now: datetime,
    stop: StopSignal,
) -> SyncState:
    """Deletion scan when due, and the sync state that the next pull starts from."""
    name, settings = run.name, run.settings
    watermark = max((w for w in (seen.newest, previous.watermark) if w is not None), default=None)
    full_sync = run.since is None
    keys: set[str] | None = None
    if full_sync:
        keys = seen.keys  # a full sync saw the whole scope
    elif _scan_due(previous.last_deletion_scan, settings.deletion_scan_hours, now):
        stop.check(f"before the deletion scan of {name}")
        assert run.connector is not None
        keys = run.connector.scan_keys()
    trusted = True
    if keys is not None:
        guard = DeletionGuard(settings.max_deletion_share)
        scan = store.mark_missing(name, keys, run_id, may_delete=guard.allows)
        run.deletions, run.deleted_detected = scan, scan.marked_deleted
        trusted = not scan.held_back
        if not trusted:
            log.warning(
                "%s: deletions held back: %d of %d stored items missing from the answer "
                "(max_deletion_share %g)",
                *(name, scan.missing, scan.expected, settings.max_deletion_share),
            )
        if scan.not_stored:
            # In scope but never pulled: the scope grew (e.g. a project added to the JQL) with
            # items older than the watermark. The next run pulls everything again.
            sample = ", ".join(scan.not_stored[:5])
            run.warnings.append(
                f"{len(scan.not_stored)} item(s) in scope were never pulled ({sample}); the "
                "scope changed, so the next run does a full sync"
            )
            watermark = None
    if full_sync and not trusted:
        # Repeat the full sync: a watermark from the few items it saw would let the next runs
        # skip every item they did not see.
        watermark = None
    return SyncState(
        connection=name,
        watermark=watermark,
        last_full_sync=now if full_sync and trusted else previous.last_full_sync,
        # An untrusted scan counts as not done, so the next run scans again.
        last_deletion_scan=now if keys is not None and trusted else previous.last_deletion_scan,
        cursor=previous.cursor,
    )


def _held_back(run: ConnectionRun) -> int:
    """Deletions the guard refused in this run (0 when it let them through)."""
    return run.deletions.missing if run.deletions is not None and run.deletions.held_back else 0


def _scan_due(last: datetime | None, every_hours: float, now: datetime) -> bool:
    return last is None or now - last >= timedelta(hours=every_hours)


def _record(store: Store, run_id: int, run: ConnectionRun) -> None:
    request_stats = run.connector.stats.as_dict() if run.connector is not None else {}
    store.record_sync_stats(
        run_id,
        SyncStats.from_request_stats(
            run.name,
            request_stats,
            since=run.since,
            pulled=run.pulled,
            marked_deleted=run.deleted_detected,
            duration_seconds=round(run.pull_seconds, 3),
            warnings=tuple(run.all_warnings()),
            error=run.error,
        ),
    )
    status = StageStatus.DONE if run.pulled_ok else StageStatus.FAILED
    detail: dict[str, object] = {"items": run.pulled, "sync": run.sync, "error": run.error}
    if run.deletions is not None:
        scan = run.deletions
        detail["deletions"] = {
            "expected": scan.expected,
            "answered": scan.answered,
            "missing": scan.missing,
            "held_back": scan.held_back,
        }
    if run.context is not None:
        detail["context"] = {
            "fetched": run.context.fetched,
            "unreadable": len(run.context.unreadable),
            "requests": run.context.requests,
            "rounds": run.context.rounds,
        }
    store.finish_stage(run_id, PULL, run.name, status=status, detail=detail)


def for_each_connection(
    runs: Sequence[ConnectionRun], work: Callable[[ConnectionRun], object], *, stage: str
) -> None:
    """Run `work` for each connection, a few at a time. A stop request lets the connections
    already under way finish their step; then the first `CycleStopped` ends the cycle."""
    if not runs:
        return
    stopped: list[CycleStopped] = []
    lock = threading.Lock()

    def guarded(run: ConnectionRun) -> None:
        try:
            work(run)
        except CycleStopped as error:
            with lock:
                stopped.append(error)

    workers = min(MAX_PARALLEL_CONNECTIONS, len(runs))
    with ThreadPoolExecutor(workers, thread_name_prefix=stage) as pool:
        list(pool.map(guarded, runs))
    if stopped:
        raise stopped[0]


def pull_all(
    store: Store,
    run_id: int,
    runs: Sequence[ConnectionRun],
    factory: ConnectorFactory,
    *,
    clock: Clock,
    progress: CycleProgress,
    stop: StopSignal,
) -> None:
    """Pull the connections that are not skipped, a few at a time."""

    def pull(run: ConnectionRun) -> None:
        stop.check(f"before pulling {run.name}")
        pull_connection(store, run_id, run, factory, clock=clock, progress=progress, stop=stop)

    for_each_connection([run for run in runs if run.skipped is None], pull, stage=PULL)
