"""Build the cycle's result document (`spm_sync.core.results.CycleResult`) from what the stages did.

In two steps, so the engines' view of every item can be released before the report stage:
`summarize_analysis` turns the analysis into the document's alignment, WSJF and WIP parts
(`Findings`) right after the engines ran; `build_result` later adds the connections, the write
log and the history. Both are pure; `read_write_log` and `read_history` are the two reads from
the store they need (counts and the first rows of the audit log, the headlines of past runs).
The report renders the document, the store keeps it as JSON, and `spm-sync run --json FILE`
writes it.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from spm_sync.config.model import Config
from spm_sync.core.domain import ItemRef, KeyResult, StatusCategory, WorkItem, WriteField
from spm_sync.core.errors import describe
from spm_sync.core.requests import RequestStats
from spm_sync.core.results import (
    CycleResult,
    Headline,
    ListCaps,
    PreviousRun,
    TrendPoint,
    WipLane,
    WsjfRow,
)
from spm_sync.core.results_alignment import (
    AlignedItem,
    AlignmentSummary,
    KeyResultAlignment,
    ObjectiveAlignment,
    Orphan,
    aligned_item_order,
)
from spm_sync.core.results_change import OrphanChanges, WriteTally, orphan_changes
from spm_sync.core.results_flow import FlowSection, HistorySync
from spm_sync.core.results_health import ConnectionHealth, DeletionCheck
from spm_sync.core.results_portfolio import PortfolioSection
from spm_sync.core.results_writes import WRITE_STATUS_ORDER, WriteLog, WriteRow, write_row_order
from spm_sync.engines.alignment import AlignmentResult, usable_job_size
from spm_sync.engines.wip import wip_lanes
from spm_sync.pipeline.analysis import Analysis
from spm_sync.pipeline.connection_figures import connection_figures
from spm_sync.pipeline.portfolio_document import with_measured_values
from spm_sync.pipeline.pull import ConnectionRun
from spm_sync.store import AuditRow, AuditStatus, HeadlineRecord, RunStatus, Store

CycleStatus = Literal["ok", "partial", "failed"]
TREND_RUNS = 12
"""Points of the report's trend chart, this run included."""
HISTORY_TRIGGERS_LEFT_OUT = ("undo",)
"""Runs that restore a past run are no cycle: they stay out of the trend."""

RUN_STATUS: dict[CycleStatus, RunStatus] = {
    "ok": RunStatus.SUCCEEDED,
    "partial": RunStatus.PARTIAL,
    "failed": RunStatus.FAILED,
}


def cycle_status(runs: Sequence[ConnectionRun], errors: Sequence[str]) -> CycleStatus:
    """failed: no connection could be pulled; partial: one failed, was skipped, had its
    deletions held back, or a stage reported an error; ok otherwise."""
    if runs and not any(run.pulled_cleanly for run in runs):
        return "failed"
    if errors or any(not run.usable for run in runs):
        return "partial"
    return "ok"


def connection_health(run: ConnectionRun) -> ConnectionHealth:
    stats = run.connector.stats if run.connector is not None else RequestStats()
    scan = run.deletions
    deletions = None
    if scan is not None:
        deletions = DeletionCheck(
            expected=scan.expected,
            fetched=scan.answered,
            missing=scan.missing,
            max_share=run.settings.max_deletion_share,
            applied=not scan.held_back,
        )
    return ConnectionHealth.from_stats(
        run.name,
        run.settings.kind,
        stats,
        items_pulled=run.pulled,
        sync=run.sync,
        deleted_detected=run.deleted_detected,
        duration_seconds=round(run.pull_seconds + run.apply_seconds, 3),
        warnings=run.all_warnings(),
        error=run.skipped or run.error,
        deletions=deletions,
    )


def _sized(item: WorkItem) -> WorkItem:
    """The item with a job size the report can show (negative, NaN or infinite -> None)."""
    size = usable_job_size(item)
    return item if size == item.job_size else dataclasses.replace(item, job_size=size)


def alignment_summary(
    alignment: AlignmentResult,
    items: Mapping[ItemRef, WorkItem],
    kr_items_cap: int = ListCaps().kr_items,
    connections: Sequence[str] = (),
) -> AlignmentSummary:
    """The alignment part of the document; each Key Result lists its first `kr_items_cap`
    items (`spm_sync.core.results.aligned_item_order`) with totals over all of them, and each of
    `connections` (the configured ones) gets its own figures."""
    by_objective: dict[str, list[KeyResultAlignment]] = defaultdict(list)
    for key_result in alignment.key_results:
        by_objective[key_result.objective_id].append(
            key_result_alignment(key_result, alignment, items, kr_items_cap)
        )
    objectives = [
        ObjectiveAlignment(
            id=objective.id,
            title=objective.title,
            owner=objective.owner,
            period=objective.period,
            key_results=by_objective.get(objective.id, []),
        )
        for objective in alignment.objectives
    ]
    orphans = [
        Orphan.from_work_item(_sized(items[(o.connection, o.item_key)]), o.reason)
        for o in alignment.orphans
    ]
    return AlignmentSummary(
        alignment_pct_items=alignment.alignment_pct_items,
        alignment_pct_job_size=alignment.alignment_pct_job_size,
        in_scope_count=alignment.in_scope_count,
        aligned_count=alignment.aligned_count,
        in_scope_job_size=alignment.in_scope_job_size,
        aligned_job_size=alignment.aligned_job_size,
        objectives=objectives,
        orphans=orphans,
        warnings=list(alignment.warnings),
        by_connection=connection_figures(alignment, connections),
    )


def key_result_alignment(
    key_result: KeyResult,
    alignment: AlignmentResult,
    items: Mapping[ItemRef, WorkItem],
    cap: int,
) -> KeyResultAlignment:
    """Totals over every item that moves the Key Result (the alignment engine's coverage);
    rows for the first `cap` only, so a Key Result moved by 40,000 items is not 40,000 models."""
    coverage = alignment.coverage.get(key_result.id)
    refs = coverage.items if coverage else ()
    mix = dict(coverage.status_mix) if coverage else dict.fromkeys(StatusCategory, 0)
    job_size_total = coverage.job_size if coverage else 0.0

    def order(ref: ItemRef) -> tuple[int, float, str]:
        item = items[ref]
        return aligned_item_order(item.status_category, usable_job_size(item), item.key)

    listed = []
    for ref in heapq.nsmallest(cap, refs, key=order):
        evidence = next(a for a in alignment.alignments[ref] if a.kr_id == key_result.id)
        via = evidence.via.value
        listed.append(AlignedItem.from_work_item(_sized(items[ref]), via, evidence.path))  # type: ignore[arg-type]
    return KeyResultAlignment(
        id=key_result.id,
        title=key_result.title,
        target=key_result.target,
        current=key_result.current,
        baseline=key_result.baseline,
        items=listed,
        item_count=len(refs),
        status_mix=mix,
        job_size_total=job_size_total,
    )


def wsjf_rows(analysis: Analysis) -> list[WsjfRow]:
    """Every scored or unscorable item in portfolio order (unscored last)."""
    scores = sorted(
        analysis.scores,
        key=lambda s: (s.portfolio_rank is None, s.portfolio_rank or 0, s.connection, s.rank),
    )
    rows = []
    for score in scores:
        item = analysis.items[(score.connection, score.item_key)]
        rows.append(
            WsjfRow(
                connection=score.connection,
                key=score.item_key,
                title=item.title,
                level=item.level,
                url=item.url,
                business_value=score.business_value,
                time_criticality=score.time_criticality,
                risk_reduction=score.risk_reduction,
                job_size=score.job_size,
                cost_of_delay=score.cost_of_delay,
                wsjf=score.wsjf,
                old_rank=analysis.old_ranks.get((score.connection, score.item_key)),
                new_rank=score.rank,
                reason_unscored=score.reason,
            )
        )
    return rows


def write_log(
    rows: Iterable[AuditRow],
    counts: Mapping[AuditStatus, int] | None = None,
    cap: int | None = None,
) -> WriteLog:
    """The write log from audit rows. `counts`: every write per status when `rows` are only the
    first ones (`read_write_log`); without it, `rows` are the whole log. `cap` keeps the first
    `cap` rows in `spm_sync.core.results.write_row_order`."""
    listed = [WriteRow.from_planned(row.write, row.status.value, row.error) for row in rows]
    if cap is not None:
        listed = heapq.nsmallest(cap, listed, key=write_row_order)
    if counts is None:
        return WriteLog(rows=listed)
    return WriteLog(rows=listed, counts={status.value: n for status, n in counts.items()})


def read_write_log(store: Store, run_id: int, cap: int = ListCaps().writes) -> WriteLog:
    """A run's write log with its first `cap` rows, read from the audit log a status at a time
    in `write_row_order` (failures first), and counts over every row."""
    counts = store.audit_counts(run_id)
    rows: list[AuditRow] = []
    for status in sorted(WRITE_STATUS_ORDER, key=WRITE_STATUS_ORDER.__getitem__):
        room = cap - len(rows)
        if room <= 0:
            break
        if counts[AuditStatus(status)]:
            rows += store.audit_rows(run_id, status=status, limit=room, order="item")
    found = write_log(rows, counts, cap)
    found.by_target = write_tally(store, run_id)
    return found


def write_tally(store: Store, run_id: int) -> list[WriteTally]:
    """The run's writes per connection and field, every status counted by the store."""
    tally: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for connection, field, status, count in store.audit_tally(run_id):
        tally[(connection, field)][status.value] = count
    return [
        WriteTally(connection=connection, field=WriteField(field), counts=counts)
        for (connection, field), counts in sorted(tally.items())
    ]


def read_orphan_changes(store: Store, result: CycleResult) -> OrphanChanges | None:
    """New and resolved orphans against the previous completed cycle (`result.previous`),
    over the connections read cleanly in both runs; None on a first run."""
    if result.previous is None or not result.previous.run_id.isdigit():
        return None
    previous_run = int(result.previous.run_id)
    clean_before = {stats.connection for stats in store.sync_stats(previous_run) if not stats.error}
    clean_now = {health.name for health in result.connections if health.problem is None}
    return orphan_changes(
        [(orphan.connection, orphan.key) for orphan in result.alignment.orphans],
        [(orphan.connection, orphan.key) for orphan in store.orphans(previous_run)],
        result.previous.run_id,
        clean_before & clean_now,
    )


def write_failures(writes: WriteLog) -> list[str]:
    """A stage error when writes failed (conflicts are the guard working, not failures)."""
    failed = writes.counts["failed"]
    return [f"write-back: {failed} write(s) failed (see the audit log)"] if failed else []


def read_history(store: Store, current_run: int) -> list[HeadlineRecord]:
    """Finished cycle runs before `current_run` with a stored headline, oldest first: the
    trend's points and the previous run. Reads headlines only, never result documents."""
    runs = store.run_headlines(
        TREND_RUNS - 1, before=current_run, exclude_triggers=HISTORY_TRIGGERS_LEFT_OUT
    )
    return sorted(runs, key=lambda run: run.run_id)


def _headline(run: HeadlineRecord) -> Headline | None:
    try:
        return Headline.model_validate(run.headline)
    except ValidationError:
        return None  # a headline from an older schema: left out of the trend


def add_history(result: CycleResult, history: Sequence[HeadlineRecord]) -> CycleResult:
    """Trend (stored runs, oldest first, this run last) and the previous run's headline."""
    points: list[TrendPoint] = []
    previous: PreviousRun | None = None
    for run in history[-(TREND_RUNS - 1) :]:
        headline = _headline(run)
        if headline is None:
            continue
        points.append(
            TrendPoint(
                run_id=str(run.run_id),
                finished=run.finished,
                alignment_pct_items=headline.alignment_pct_items,
                alignment_pct_job_size=headline.alignment_pct_job_size,
                orphans=headline.orphans,
            )
        )
        previous = PreviousRun(run_id=str(run.run_id), finished=run.finished, headline=headline)
    result.trend = [*points, result.trend_point()]
    result.previous = previous
    return result


@dataclass(frozen=True)
class Findings:
    """The document's parts that need the items: built while the analysis is in memory, so it
    can be released before the apply and report stages."""

    alignment: AlignmentSummary
    wsjf: list[WsjfRow]
    wip: list[WipLane]
    caps: ListCaps
    flow: FlowSection | None = None
    flow_error: str | None = None
    """Why flow could not be measured (a problem line of the run)."""
    portfolio: PortfolioSection | None = None
    portfolio_error: str | None = None


def summarize_analysis(
    config: Config,
    analysis: Analysis,
    caps: ListCaps | None = None,
    *,
    flow: FlowSection | None = None,
    flow_error: str | None = None,
    portfolio: PortfolioSection | None = None,
    portfolio_error: str | None = None,
) -> Findings:
    caps = caps or ListCaps()
    return Findings(
        alignment=with_measured_values(
            alignment_summary(
                analysis.alignment,
                analysis.items,
                caps.kr_items,
                [connection.name for connection in config.connections],
            ),
            portfolio,
        ),
        wsjf=wsjf_rows(analysis),
        wip=wip_lanes(config.wip_limits, analysis.items.values()),
        caps=caps,
        flow=flow,
        flow_error=flow_error,
        portfolio=portfolio,
        portfolio_error=portfolio_error,
    )


def history_syncs(runs: Sequence[ConnectionRun]) -> list[HistorySync]:
    """Each connection's status history pull in this run (none for one that made none)."""
    return [
        HistorySync(
            connection=run.name,
            changes_read=run.history.read,
            changes_stored=run.history.stored,
            error=None if run.history.error is None else describe(run.history.error),
        )
        for run in runs
        if run.history is not None
    ]


def with_history(flow: FlowSection | None, runs: Sequence[ConnectionRun]) -> FlowSection | None:
    if flow is None:
        return None
    return flow.model_copy(update={"history": history_syncs(runs)})


def build_result(
    *,
    run_id: int,
    started: datetime,
    finished: datetime,
    mode: str,
    runs: Sequence[ConnectionRun],
    findings: Findings,
    writes: WriteLog,
    history: Sequence[HeadlineRecord],
    errors: Sequence[str] = (),
) -> CycleResult:
    errors = [*errors, *write_failures(writes)]
    errors += [e for e in (findings.flow_error, findings.portfolio_error) if e is not None]
    result = CycleResult(
        run_id=str(run_id),
        started=started,
        finished=max(finished, started),
        status=cycle_status(runs, errors),
        mode=mode,
        errors=errors,
        connections=[connection_health(run) for run in runs],
        alignment=findings.alignment,
        wsjf=findings.wsjf,
        writes=writes,
        wip=findings.wip,
        caps=findings.caps,
        flow=with_history(findings.flow, runs),
        portfolio=findings.portfolio,
    )
    return add_history(result, history)


def result_json(result: CycleResult) -> dict[str, Any]:
    """The document as stored in the runs table (computed fields included, for readers)."""
    return result.model_dump(mode="json")


def headline_json(result: CycleResult) -> dict[str, Any]:
    """The headline as stored beside the document, for the next runs' history reads."""
    return result.headline.model_dump(mode="json")
