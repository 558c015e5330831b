"""The commands that drive the pipeline: `run`, `report` and `undo` (see `spm_sync.cli.main`).

The cycle itself is `spm_sync.pipeline.cycle.run_cycle` (re-exported here as `run_cycle`); these
functions open the store, wire the production dependencies, print the outcome and return the
exit status (`spm_sync.core.exit_codes`): 0 ok, 1 a connection, the email, a write or the store
failed mid-run (or the run was stopped), 2 the command could not start (the store cannot be
opened or is newer than this version, an unknown run), 3 skipped because another process
holds the store or every connection. Failures the user can do something about are one line;
the traceback is logged only with -v.
"""

from __future__ import annotations

import json
import logging
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from spm_sync.cli.progress_bars import make_progress
from spm_sync.cli.summary import audit_summary, audit_table, output_console, print_cycle
from spm_sync.cli.terminal import diagnostics_console, results_console, say
from spm_sync.config.model import Config, WriteMode
from spm_sync.core import exit_codes
from spm_sync.core.errors import describe
from spm_sync.core.results import SCHEMA_VERSION, CycleResult, ListCaps
from spm_sync.pipeline.apply import apply_all
from spm_sync.pipeline.cycle import (
    CycleDeps,
    CycleOutcome,
    close_connectors,
    close_failed_run,
    finish_with_result,
    lock_connections,
    log_traceback,
    publish_as_configured,
    run_cycle,
    start_locked_run,
)
from spm_sync.pipeline.cycle_document import (
    connection_health,
    cycle_status,
    read_write_log,
    write_failures,
)
from spm_sync.pipeline.progress import kv
from spm_sync.pipeline.pull import ConnectionRun, pull_all
from spm_sync.pipeline.stopping import CycleStopped, StopSignal, stop_on_signals
from spm_sync.pipeline.store_access import StoreUnavailable, open_store
from spm_sync.pipeline.undo import old_orders, plan_undo, written_rows
from spm_sync.store import AuditRow, RunRecord, RunStatus, Store, StoreBusy

__all__ = ["report_command", "run_command", "run_cycle", "run_undo", "undo_command"]

log = logging.getLogger(__name__)
CANNOT_START = exit_codes.CANNOT_START


def run_command(
    config: Config, *, mode: WriteMode | None, send_email: bool, json_path: Path | None
) -> int:
    """`spm-sync run`: one cycle now, a summary table at the end (on stderr when the JSON
    result goes to stdout: `--json -`)."""
    json_to_stdout = json_path is not None and str(json_path) == "-"
    console = results_console(stderr=True) if json_to_stdout else output_console()
    progress = make_progress(Console(stderr=True), show_log=True)
    stop = StopSignal()
    try:
        with open_store(config) as store, stop_on_signals(stop):
            deps = CycleDeps(store, progress=progress, stop=stop)
            outcome = run_cycle(config, deps, mode=mode, send_email=send_email)
    except StoreUnavailable as error:
        say_failure(console, f"{error}")
        return CANNOT_START
    except SQLAlchemyError as error:
        log_traceback("the store failed")
        say_failure(
            console,
            f"the store failed mid-run: {describe(error)}; what was stored before is kept, "
            "and the next run closes this one and picks up from there",
        )
        return exit_codes.FAILED
    finally:
        progress.close()
    print_outcome(console, outcome)
    if json_path is not None and not write_json(console, json_path, outcome):
        return max(outcome.exit_status, exit_codes.FAILED)
    return outcome.exit_status


def skipped_document(outcome: CycleOutcome) -> dict[str, object]:
    """The `--json` document of a cycle that did not start: a consumer reading the file after
    every run learns why there is no result, instead of finding last night's file."""
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": None,
        "status": "skipped",
        "reason": outcome.skipped,
        "exit_status": outcome.exit_status,
    }


def write_json(console: Console, path: Path, outcome: CycleOutcome) -> bool:
    """Write the `--json` file (the result, or why there is none); False, with one line
    said, when it cannot be written."""
    if outcome.result is not None:
        text = outcome.result.model_dump_json(indent=2)
    elif outcome.skipped is not None:
        text = json.dumps(skipped_document(outcome), indent=2)
    else:
        return True  # stopped before a result: the run's record in the store says so
    try:
        if str(path) == "-":
            say(text)  # the result itself: printed even under -q
        else:
            path.write_text(text + "\n", encoding="utf-8")
    except OSError as error:
        say_failure(console, f"--json {path}: not written: {describe(error)}")
        return False
    return True


def say_failure(console: Console, message: str) -> None:
    """One line on stderr, however long: a log or a cron mail should not break it in the
    middle, and stdout keeps only results (`console` is the results console, not used)."""
    diagnostics_console().print(f"[red]✗[/red] {message}", soft_wrap=True, highlight=False)


def print_outcome(console: Console, outcome: CycleOutcome) -> None:
    if outcome.skipped:
        console.print(f"[yellow]skipped[/yellow]: {outcome.skipped}", soft_wrap=True)
        return
    if outcome.stopped:
        console.print(f"[yellow]run {outcome.run_id} stopped[/yellow]: {outcome.stopped}")
        return
    assert outcome.result is not None
    lines = []
    if outcome.report is not None:
        lines.append(f"report: {outcome.report.paths.html}")
        delivery = outcome.report.delivery
        lines.append(
            f"email: {delivery.status}" + (f" ({delivery.reason})" if delivery.reason else "")
        )
    print_cycle(console, outcome.result, lines)


def _reported_run(store: Store, run_id: int | None) -> tuple[RunRecord | None, bool]:
    """The run to render (the newest completed sync cycle unless one is named), and whether
    it is that newest cycle: only then does its page replace `latest.html`."""
    latest = store.latest_cycle_with_result()
    if run_id is None:
        run_id = latest
    record = store.get_run(run_id) if run_id is not None else None
    return record, record is not None and record.id == latest


def report_command(
    config: Config, *, run_id: int | None, send: bool, full_audit: bool = False
) -> int:
    """`spm-sync report`: render a stored run's report again (and send it), show its audit."""
    console = output_console()
    try:
        with open_store(config) as store:
            record, is_latest = _reported_run(store, run_id)
            audit = store.audit_rows(record.id) if record is not None else []
    except StoreUnavailable as error:
        say_failure(console, f"{error}")
        return CANNOT_START
    if record is None:
        which = f"run {run_id}" if run_id is not None else "completed sync cycle with a result"
        say_failure(console, f"the store has no {which}")
        return CANNOT_START
    if not record.result:
        say_failure(
            console,
            f"run {record.id} ({record.status}) has no stored result to render"
            + (f": {record.error}" if record.error else ""),
        )
        return 1
    try:
        result = CycleResult.model_validate(record.result)
    except ValidationError as error:
        say_failure(console, f"run {record.id}'s stored result cannot be read: {error}")
        return 1
    try:
        published = publish_as_configured(config, result, send=send, as_latest=is_latest)
    except OSError as error:
        log_traceback("writing the report failed")
        say_failure(console, f"run {record.id}'s report not written: {describe(error)}")
        return exit_codes.FAILED
    if full_audit:
        console.print(audit_table(audit, f"Audit log of run {record.id}"))
    else:
        console.print(audit_summary(audit, f"Writes of run {record.id}"))
        console.print(f"full audit log: spm-sync report --run {record.id} --audit")
    console.print(f"report: {published.paths.html}")
    delivery = published.delivery
    if send:
        reason = f" ({delivery.reason})" if delivery.reason else ""
        console.print(f"email: {delivery.status}{reason}")
        return 0 if delivery.status == "sent" else 1
    return 0


def undo_command(config: Config, *, run_id: int, mode: WriteMode | None) -> int:
    """`spm-sync undo --run ID [--apply]`: a dry run unless --apply."""
    console = output_console()
    stop = StopSignal()
    try:
        with open_store(config) as store, stop_on_signals(stop):
            if store.get_run(run_id) is None:
                say_failure(console, f"the store has no run {run_id}")
                return CANNOT_START
            progress = make_progress(Console(stderr=True), show_log=True)
            deps = CycleDeps(store, progress=progress, stop=stop)
            try:
                outcome = run_undo(config, deps, run_id=run_id, mode=mode or WriteMode.PLAN)
            finally:
                deps.progress.close()
            audit = store.audit_rows(outcome.run_id) if outcome.run_id is not None else []
    except StoreUnavailable as error:
        say_failure(console, f"{error}")
        return CANNOT_START
    except SQLAlchemyError as error:
        log_traceback("the store failed")
        say_failure(console, f"the store failed mid-run: {describe(error)}")
        return exit_codes.FAILED
    if outcome.refused:
        say_failure(console, f"{outcome.refused}")
        return CANNOT_START
    if outcome.result is None and not outcome.stopped and not outcome.skipped:
        console.print(f"run {run_id} wrote nothing: nothing to undo")
        return 0
    if outcome.result is not None:
        console.print(audit_table(audit, f"Undo of run {run_id} (run {outcome.run_id})"))
    print_outcome(console, outcome)
    return outcome.exit_status


@dataclass(frozen=True)
class UndoJob:
    """What one `undo` run works on."""

    undone_run: int
    undo_run: int
    rows: list[AuditRow]
    mode: WriteMode
    errors: list[str]
    started: datetime


def run_undo(config: Config, deps: CycleDeps, *, run_id: int, mode: WriteMode) -> CycleOutcome:
    """Plan (and in apply mode perform) the restoring writes of run `run_id` as a new run,
    under the same store and connection locks as a cycle (a dry run too: it pulls and
    records a run)."""
    store = deps.store
    rows = written_rows(store, run_id)
    if not rows:
        return CycleOutcome(None)
    names = sorted({row.write.connection for row in rows})
    configured = {connection.name for connection in config.connections}
    errors = [
        f"{name}: not in the config; its writes of run {run_id} cannot be undone"
        for name in names
        if name not in configured
    ]
    if not configured.intersection(names):
        return CycleOutcome(None, refused=f"{'; '.join(errors)}: nothing to undo")
    with ExitStack() as held:
        try:
            held.enter_context(store.cycle_lock(f"the undo of run {run_id}"))
        except StoreBusy as busy:
            return CycleOutcome(None, skipped=str(busy))
        connections = [config.connection(name) for name in names if name in configured]
        runs = lock_connections(store, connections, held)
        if all(run.skipped for run in runs):
            return CycleOutcome(None, skipped="every connection of that run is being synced")
        undo_run = start_locked_run(store, held, mode, "undo")
        started = store.get_run(undo_run).started  # type: ignore[union-attr]
        job = UndoJob(run_id, undo_run, rows, mode, errors, started)
        try:
            return _undo_stages(config, deps, job, runs)
        except CycleStopped as stopped:
            store.finish_run(undo_run, RunStatus.FAILED, error=f"{stopped} ({deps.stop.reason})")
            return CycleOutcome(undo_run, stopped=str(stopped))
        except BaseException as error:
            close_failed_run(store, undo_run, error)
            raise
        finally:
            close_connectors(runs)


def _undo_stages(
    config: Config, deps: CycleDeps, job: UndoJob, runs: list[ConnectionRun]
) -> CycleOutcome:
    store, undo_run = deps.store, job.undo_run
    store.set_stage(undo_run, "pull")
    pull_all(
        store,
        undo_run,
        runs,
        deps.connector_factory,
        clock=deps.clock,
        progress=deps.progress,
        stop=deps.stop,
    )
    deps.stop.check("after the pull")
    store.set_stage(undo_run, "plan")
    orders = old_orders(store, job.undone_run)
    for run in (r for r in runs if r.usable):
        assert run.connector is not None
        items = {item.key: item for item in store.iter_items(run.name)}
        mine = [row for row in job.rows if row.write.connection == run.name]
        order = orders.get(run.name, [])
        undo = plan_undo(mine, items, order, run.connector.rank_kind, job.undone_run)
        store.record_plan(undo_run, undo.all_writes())
        store.record_write_results(undo_run, undo.conflicts)
    if job.mode is WriteMode.APPLY:
        store.set_stage(undo_run, "apply")
        apply_all(store, undo_run, runs, deps.stop)
    caps = ListCaps()
    writes = read_write_log(store, undo_run, caps.writes)
    errors = [*job.errors, *write_failures(writes)]
    result = CycleResult(
        run_id=str(undo_run),
        started=job.started,
        finished=max(deps.clock(), job.started),
        status=cycle_status(runs, errors),
        mode=job.mode.value,
        errors=errors,
        connections=[connection_health(run) for run in runs],
        writes=writes,
        caps=caps,
        undoes=str(job.undone_run),
    )
    finish_with_result(store, undo_run, result)
    log.info(kv("undo.done", run=undo_run, undone=job.undone_run, status=result.status))
    return CycleOutcome(undo_run, result=result)
