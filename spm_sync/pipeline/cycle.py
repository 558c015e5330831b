"""One cycle: pull -> align -> score -> plan -> apply (apply mode only) -> report -> email.

`run_cycle(config, deps)` composes the stages; every dependency (store, connector factory,
clock, SMTP factory, progress, stop signal) comes in through `CycleDeps`, so tests swap them
without patching.

Concurrency. Each connection is guarded by the advisory lock `sync:<name>` for the whole cycle
(pull to write-back): on PostgreSQL, a `serve` worker that finds it taken leaves that
connection alone in this cycle with a warning, so no connection is ever synced twice at once;
a worker that can lock none of them does not start a run at all. The run itself holds
`run:<id>` while it is alive, which is how a later cycle tells a crashed run from one still
running in another worker.

On SQLite the whole cycle also holds the store (`Store.cycle_lock`, a lock file): a second
process that starts a cycle, an undo or a scheduled slot on the same file while one runs gets
"store busy" (`CycleOutcome.skipped`, exit status 3) and touches nothing, so no write is ever
made twice and the audit log never holds two runs' `written` rows for one change.

Resume. Every stage's progress is stored (`set_stage`, `start_stage`/`finish_stage`, per
connection for pull and apply). A run that a crash left `running` is closed as failed by the
next cycle, which does not replay it: it pulls incrementally (a connection whose pull had
finished kept its advanced watermark, so that costs little; one that had not is pulled again
from its old watermark) and plans again, which converges because planning compares with the
trackers' current values. A stored plan is never re-applied blindly, and audit rows already
written are never written again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from connectors.registry import ConnectorFactory, default_connector_factory
from reports.email import DeliveryResult, SmtpFactory, default_smtp_factory
from reports.publish import PublishedReport, publish_report
from reports.settings import EmailSettings, ReportOptions
from spm_sync.config.connections import AzureDevOpsConnection, JiraConnection
from spm_sync.config.model import Config, WriteMode
from spm_sync.core import exit_codes
from spm_sync.core.errors import describe
from spm_sync.core.results import CycleResult
from spm_sync.pipeline.analysis import analyse, store_analysis
from spm_sync.pipeline.apply import apply_all
from spm_sync.pipeline.cycle_document import (
    RUN_STATUS,
    Findings,
    build_result,
    headline_json,
    read_history,
    read_orphan_changes,
    read_write_log,
    result_json,
    summarize_analysis,
)
from spm_sync.pipeline.flow_stage import cycle_flow
from spm_sync.pipeline.portfolio_stage import PortfolioInput, cycle_portfolio
from spm_sync.pipeline.progress import CycleProgress, LogProgress, kv
from spm_sync.pipeline.pull import ConnectionRun, pull_all
from spm_sync.pipeline.stopping import CycleStopped, StopSignal
from spm_sync.store import RunStatus, StageStatus, Store, StoreBusy

log = logging.getLogger(__name__)

BUSY = "skipped: another worker is syncing this connection right now"


def log_traceback(message: str) -> None:
    """Log the exception being handled with its traceback, with -v only. The root logger's
    level is what -v sets; `run` and `serve` show our own INFO lines at any verbosity, so
    the `spm_sync` logger's level cannot tell."""
    if logging.getLogger().getEffectiveLevel() <= logging.INFO:
        log.info(message, exc_info=True)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class CycleDeps:
    store: Store
    connector_factory: ConnectorFactory = field(default_factory=default_connector_factory)
    clock: Callable[[], datetime] = utc_now
    smtp_factory: SmtpFactory = default_smtp_factory
    progress: CycleProgress = field(default_factory=LogProgress)
    stop: StopSignal = field(default_factory=StopSignal)
    email_sleep: Callable[[float], None] = time.sleep


@dataclass(frozen=True)
class CycleOutcome:
    """What `run_cycle` did. `run_id` is None when no run was started (see `skipped`)."""

    run_id: int | None
    result: CycleResult | None = None
    report: PublishedReport | None = None
    stopped: str | None = None
    skipped: str | None = None
    refused: str | None = None
    """Why the command cannot run at all with this config (exit status 2)."""

    @property
    def delivery(self) -> DeliveryResult | None:
        return self.report.delivery if self.report is not None else None

    @property
    def exit_status(self) -> int:
        """0 when everything went well, 3 when skipped because another process holds the
        store or every connection, 1 otherwise (a connection, the email, a stop)."""
        if self.refused is not None:
            return exit_codes.CANNOT_START
        if self.skipped is not None and self.run_id is None:
            return exit_codes.BUSY
        ok = self.result is not None and self.result.status == "ok"
        return exit_codes.OK if ok else exit_codes.FAILED


def run_cycle(
    config: Config,
    deps: CycleDeps,
    *,
    mode: WriteMode | None = None,
    send_email: bool = True,
    trigger: str = "cli",
) -> CycleOutcome:
    """Run one cycle; see the module docstring for locking and resume."""
    mode = mode or config.write_back.mode
    store = deps.store
    with ExitStack() as held:
        try:
            held.enter_context(store.cycle_lock("this cycle"))
        except StoreBusy as busy:
            log.warning(kv("cycle.skipped", reason="store busy"))
            return CycleOutcome(None, skipped=str(busy))
        runs = lock_connections(store, config.connections, held)
        if all(run.skipped for run in runs):
            log.warning(kv("cycle.skipped", reason="every connection is locked by another worker"))
            return CycleOutcome(None, skipped="every connection is being synced by another worker")
        run_id = start_locked_run(store, held, mode, trigger)
        deps.progress.stage("start", run=run_id, mode=mode.value, trigger=trigger)
        try:
            return _stages(config, deps, run_id, runs, mode, send_email)
        except CycleStopped as stopped:
            message = f"{stopped} ({deps.stop.reason}); the next run pulls and plans again"
            store.finish_run(run_id, RunStatus.FAILED, error=message)
            log.warning(kv("cycle.stopped", run=run_id, where=stopped.where))
            return CycleOutcome(run_id, stopped=message)
        except BaseException as error:
            close_failed_run(store, run_id, error)
            raise
        finally:
            close_connectors(runs)


def lock_connections(
    store: Store,
    connections: Iterable[JiraConnection | AzureDevOpsConnection],
    held: ExitStack,
) -> list[ConnectionRun]:
    """A `ConnectionRun` per connection, holding its `sync:<name>` lock until `held` closes;
    one whose lock another worker holds is marked skipped (`BUSY`)."""
    runs = []
    for connection in connections:
        run = ConnectionRun(connection)
        if not held.enter_context(store.advisory_lock(f"sync:{connection.name}")):
            run.skipped = BUSY
            log.warning(kv("connection.busy", connection=connection.name))
        runs.append(run)
    return runs


def start_locked_run(store: Store, held: ExitStack, mode: WriteMode, trigger: str) -> int:
    """Record a new run and hold its `run:<id>` lock until `held` closes (how a later cycle
    tells it from a crashed one), then close the runs a crash left running."""
    run_id = store.start_run(mode.value, trigger=trigger)
    held.enter_context(store.advisory_lock(f"run:{run_id}"))
    close_interrupted_runs(store, run_id)
    return run_id


def close_failed_run(store: Store, run_id: int, error: BaseException) -> None:
    """Record the run as failed, if the store still answers. When it does not (the store
    itself is what failed) the run stays `running`, and the next cycle closes it as
    interrupted: nothing stored so far is lost either way."""
    try:
        store.finish_run(run_id, RunStatus.FAILED, error=describe(error))
    except Exception as unrecorded:
        log.debug("could not record run %s as failed", run_id, exc_info=True)
        log.info(kv("run.left_running", run=run_id, error=describe(unrecorded)))
        return
    log.info(kv("cycle.failed", run=run_id, error=describe(error)))


def finish_with_result(store: Store, run_id: int, result: CycleResult) -> None:
    """Close the run with the status, document, headline and problems of its `result`."""
    store.finish_run(
        run_id,
        RUN_STATUS[result.status],
        result=result_json(result),
        headline=headline_json(result),
        error="; ".join(result.problems) or None,
    )


def close_interrupted_runs(store: Store, current_run: int) -> list[int]:
    """Close runs left `running` by a process that is gone (see the module docstring)."""
    closed = []
    for record in store.unfinished_runs():
        if record.id == current_run:
            continue
        with store.advisory_lock(f"run:{record.id}") as free:
            if not free:
                continue  # alive in another worker
            store.finish_run(
                record.id,
                RunStatus.FAILED,
                error=(
                    f"interrupted during stage {record.stage or 'start'} (the process ended "
                    f"before the run finished); run {current_run} pulled and planned again"
                ),
            )
            closed.append(record.id)
            log.warning(kv("run.interrupted", run=record.id, stage=record.stage, by=current_run))
    return closed


@contextmanager
def _stage(store: Store, run_id: int, name: str, progress: CycleProgress) -> Iterator[None]:
    store.set_stage(run_id, name)
    store.start_stage(run_id, name)
    progress.stage(name, run=run_id)
    try:
        yield
    except BaseException:
        store.finish_stage(run_id, name, status=StageStatus.FAILED)
        raise
    store.finish_stage(run_id, name)


def _stages(
    config: Config,
    deps: CycleDeps,
    run_id: int,
    runs: list[ConnectionRun],
    mode: WriteMode,
    send_email: bool,
) -> CycleOutcome:
    store, stop, progress = deps.store, deps.stop, deps.progress
    started = store.get_run(run_id).started  # type: ignore[union-attr]
    store.set_stage(run_id, "pull")
    pull_all(
        store, run_id, runs, deps.connector_factory, clock=deps.clock, progress=progress, stop=stop
    )
    stop.check("after the pull")
    with _stage(store, run_id, "analyse", progress):
        findings, planned = _analyse(config, store, run_id, runs, deps.clock())
    log.info(kv("plan.done", run=run_id, planned_writes=planned, mode=mode.value))
    stop.check("after planning")
    if mode is WriteMode.APPLY and planned:
        store.set_stage(run_id, "apply")
        progress.stage("apply", run=run_id, writes=planned)
        apply_all(store, run_id, runs, stop)
        stop.check("after the write-back")
    with _stage(store, run_id, "report", progress):
        result = _result(deps, run_id, started, mode, runs, findings)
        published = _publish(config, deps, result, send_email)
    finish_with_result(store, run_id, result)
    log.info(_finished_line(run_id, result, published))
    return CycleOutcome(run_id, result=result, report=published)


def _analyse(
    config: Config, store: Store, run_id: int, runs: Sequence[ConnectionRun], now: datetime
) -> tuple[Findings, int]:
    """Align, score and plan, and measure flow; store what was found; keep only what the
    report needs. The analysis (every item, every alignment, every item's flow facts) goes
    when this returns, before the write-back and the report, so a cycle's peak memory is the
    engines' and not the engines' plus the report's."""
    analysis = analyse(config, store, runs)
    planned = store_analysis(store, run_id, analysis)
    flow, flow_error = cycle_flow(
        config.flow, store, analysis.items, analysis.alignment, analysis.scores, now
    )
    portfolio, portfolio_error = cycle_portfolio(
        config, PortfolioInput(analysis.items, analysis.alignment, analysis.scores), runs
    )
    findings = summarize_analysis(
        config,
        analysis,
        flow=flow,
        flow_error=flow_error,
        portfolio=portfolio,
        portfolio_error=portfolio_error,
    )
    return findings, planned


def _result(
    deps: CycleDeps,
    run_id: int,
    started: datetime,
    mode: WriteMode,
    runs: Sequence[ConnectionRun],
    findings: Findings,
) -> CycleResult:
    store = deps.store
    result = build_result(
        run_id=run_id,
        started=started,
        finished=deps.clock(),
        mode=mode.value,
        runs=runs,
        findings=findings,
        writes=read_write_log(store, run_id, findings.caps.writes),
        history=read_history(store, run_id),
    )
    result.orphan_changes = read_orphan_changes(store, result)
    return result


def _publish(
    config: Config, deps: CycleDeps, result: CycleResult, send_email: bool
) -> PublishedReport | None:
    """Write the report files, then send; a failure here is recorded in the result, never
    fatal (the run's data is stored either way)."""
    try:
        published = publish_as_configured(
            config,
            result,
            send=send_email,
            smtp_factory=deps.smtp_factory,
            sleep=deps.email_sleep,
        )
    except Exception as error:  # one line; the traceback only with -v
        log_traceback("writing the report failed")
        log.error(kv("report.failed", run=result.run_id, error=describe(error)))
        _add_error(result, f"report: not written: {describe(error)}")
        return None
    if published.delivery.status == "failed":
        _add_error(result, f"email: not sent: {published.delivery.reason}")
    return published


def publish_as_configured(
    config: Config,
    result: CycleResult,
    *,
    send: bool,
    smtp_factory: SmtpFactory = default_smtp_factory,
    sleep: Callable[[float], None] = time.sleep,
    as_latest: bool | None = None,
) -> PublishedReport:
    """The report files in the configured folder, then the email as `report.email` says.
    `as_latest`: see `reports.publish.publish_report`."""
    return publish_report(
        result,
        config.report.output_dir,
        options=ReportOptions.from_config(config.report),
        email=EmailSettings.from_config(config.report.email),
        send=send,
        smtp_factory=smtp_factory,
        sleep=sleep,
        as_latest=as_latest,
    )


def _add_error(result: CycleResult, message: str) -> None:
    result.errors.append(message)
    if result.status == "ok":
        result.status = "partial"


def _finished_line(run_id: int, result: CycleResult, published: PublishedReport | None) -> str:
    headline = result.headline
    return kv(
        "cycle.done",
        run=run_id,
        status=result.status,
        mode=result.mode,
        items=sum(c.items_pulled for c in result.connections),
        aligned_pct=headline.alignment_pct_items,
        orphans=headline.orphans,
        planned=headline.writes_planned,
        written=headline.writes_applied,
        conflicts=headline.write_conflicts,
        email=published.delivery.status if published else "not written",
        seconds=(result.finished - result.started).total_seconds(),
    )


def close_connectors(runs: Sequence[ConnectionRun]) -> None:
    for run in runs:
        if run.connector is not None:
            try:
                run.connector.close()
            except Exception:  # closing must not hide the cycle's own outcome
                log.debug("closing %s failed", run.name, exc_info=True)
