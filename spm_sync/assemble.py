"""Build the cycle's result document (`spm_sync.results.CycleResult`) from what the stages did.

Pure: the engines' outputs, the connections' runs, the audit rows and the history of stored
runs come in, the document goes out. The report renders it, the store keeps it as JSON, and
`spm-sync run --json FILE` writes it.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from connectors.base import RequestStats
from spm_sync.alignment import AlignmentResult, usable_job_size
from spm_sync.alignment_rules import path_has_prefix
from spm_sync.analysis import Analysis
from spm_sync.config import Config
from spm_sync.domain import Level, StatusCategory, WorkItem
from spm_sync.pull import ConnectionRun
from spm_sync.results import (
    AlignedItem,
    AlignmentSummary,
    ConnectionHealth,
    CycleResult,
    Headline,
    KeyResultAlignment,
    ObjectiveAlignment,
    Orphan,
    PreviousRun,
    TrendPoint,
    WipLane,
    WriteLog,
    WriteRow,
    WsjfRow,
)
from spm_sync.store import AuditRow, RunRecord, RunStatus

ItemRef = tuple[str, str]
CycleStatus = Literal["ok", "partial", "failed"]
TREND_RUNS = 12
"""Points of the report's trend chart, this run included."""
WIP_LEVELS = (Level.EPIC, Level.FEATURE)
"""Levels of the portfolio Kanban when no WIP limit says otherwise."""

RUN_STATUS: dict[CycleStatus, RunStatus] = {
    "ok": RunStatus.SUCCEEDED,
    "partial": RunStatus.PARTIAL,
    "failed": RunStatus.FAILED,
}


def cycle_status(runs: Sequence[ConnectionRun], errors: Sequence[str]) -> CycleStatus:
    """failed: no connection could be pulled; partial: one failed, was skipped, or a stage
    reported an error; ok otherwise."""
    if runs and not any(run.usable for run in runs):
        return "failed"
    if errors or any(not run.usable for run in runs):
        return "partial"
    return "ok"


def connection_health(run: ConnectionRun) -> ConnectionHealth:
    stats = run.connector.stats if run.connector is not None else RequestStats()
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
    )


def _sized(item: WorkItem) -> WorkItem:
    """The item with a job size the report can show (negative, NaN or infinite -> None)."""
    size = usable_job_size(item)
    return item if size == item.job_size else dataclasses.replace(item, job_size=size)


def alignment_summary(
    alignment: AlignmentResult, items: Mapping[ItemRef, WorkItem]
) -> AlignmentSummary:
    by_objective: dict[str, list[KeyResultAlignment]] = defaultdict(list)
    for key_result in alignment.key_results:
        coverage = alignment.coverage.get(key_result.id)
        aligned: list[AlignedItem] = []
        for ref in coverage.items if coverage else ():
            evidence = next(a for a in alignment.alignments[ref] if a.kr_id == key_result.id)
            aligned.append(
                AlignedItem.from_work_item(
                    _sized(items[ref]),
                    evidence.via.value,  # type: ignore[arg-type]
                    evidence.path,
                )
            )
        by_objective[key_result.objective_id].append(
            KeyResultAlignment(
                id=key_result.id,
                title=key_result.title,
                target=key_result.target,
                current=key_result.current,
                items=aligned,
            )
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


def write_log(rows: Iterable[AuditRow]) -> WriteLog:
    return WriteLog(
        rows=[
            WriteRow.from_planned(row.write).model_copy(
                update={"status": row.status.value, "error": row.error}
            )
            for row in rows
        ]
    )


def write_failures(writes: WriteLog) -> list[str]:
    """A stage error when writes failed (conflicts are the guard working, not failures)."""
    failed = writes.counts["failed"]
    return [f"write-back: {failed} write(s) failed (see the audit log)"] if failed else []


def team_matches(item: WorkItem, team: str) -> bool:
    """A WIP limit's team names the item's team (Jira: its project), an ancestor of its area
    path, or one segment of that path ("Payments" matches "Portfolio\\Payments\\Falcon")."""
    wanted = team.strip().casefold()
    for value in (item.team, item.project):
        if value is None:
            continue
        segments = [part.strip().casefold() for part in value.replace("/", "\\").split("\\")]
        if value.casefold() == wanted or wanted in segments or path_has_prefix(value, team):
            return True
    return False


def wip_lanes(config: Config, items: Iterable[WorkItem]) -> list[WipLane]:
    """One lane per team with a WIP limit; without limits, one per team at epic/feature level."""
    items = list(items)
    if not config.wip_limits:
        return _unlimited_lanes(items)
    teams: dict[str, str] = {}
    for limit in config.wip_limits:
        teams.setdefault(limit.team.casefold(), limit.team)
    lanes = []
    for folded, team in teams.items():
        limits = [limit for limit in config.wip_limits if limit.team.casefold() == folded]
        levels = {level for limit in limits for level in limit.levels}
        matching = [i for i in items if i.level in levels and team_matches(i, team)]
        connections = {item.connection for item in matching}
        lanes.append(
            WipLane(
                team=team,
                connection=connections.pop() if len(connections) == 1 else None,
                counts=_counts(matching),
                limits={limit.status_category: limit.limit for limit in limits},
            )
        )
    return lanes


def _unlimited_lanes(items: Sequence[WorkItem]) -> list[WipLane]:
    grouped: dict[tuple[str, str], list[WorkItem]] = defaultdict(list)
    for item in items:
        if item.level in WIP_LEVELS and item.team:
            grouped[(item.connection, item.team)].append(item)
    return [
        WipLane(team=team, connection=connection, counts=_counts(members))
        for (connection, team), members in sorted(grouped.items())
    ]


def _counts(items: Iterable[WorkItem]) -> dict[StatusCategory, int]:
    counts = dict.fromkeys(StatusCategory, 0)
    for item in items:
        counts[item.status_category] += 1
    return counts


def reportable_history(runs: Iterable[RunRecord], current_run: int) -> list[RunRecord]:
    """Finished cycle runs (not undo runs) with a stored result, oldest first."""
    usable = [
        run
        for run in runs
        if run.id != current_run
        and run.id < current_run
        and run.status in (RunStatus.SUCCEEDED, RunStatus.PARTIAL)
        and run.trigger != "undo"
        and run.result
        and run.finished is not None
        and isinstance(run.result.get("headline"), dict)
    ]
    return sorted(usable, key=lambda run: run.id)


def _headline(run: RunRecord) -> Headline | None:
    assert run.result is not None
    try:
        return Headline.model_validate(run.result["headline"])
    except ValidationError:
        return None  # a document from an older schema: left out of the trend


def add_history(result: CycleResult, history: Sequence[RunRecord]) -> CycleResult:
    """Trend (stored runs, oldest first, this run last) and the previous run's headline."""
    points: list[TrendPoint] = []
    previous: PreviousRun | None = None
    for run in history[-(TREND_RUNS - 1) :]:
        headline = _headline(run)
        if headline is None or run.finished is None:
            continue
        points.append(
            TrendPoint(
                run_id=str(run.id),
                finished=run.finished,
                alignment_pct_items=headline.alignment_pct_items,
                alignment_pct_job_size=headline.alignment_pct_job_size,
                orphans=headline.orphans,
            )
        )
        previous = PreviousRun(run_id=str(run.id), finished=run.finished, headline=headline)
    result.trend = [*points, result.trend_point()]
    result.previous = previous
    return result


def build_result(
    *,
    config: Config,
    run_id: int,
    started: datetime,
    finished: datetime,
    mode: str,
    runs: Sequence[ConnectionRun],
    analysis: Analysis,
    audit: Iterable[AuditRow],
    history: Sequence[RunRecord],
    errors: Sequence[str] = (),
) -> CycleResult:
    writes = write_log(audit)
    errors = [*errors, *write_failures(writes)]
    result = CycleResult(
        run_id=str(run_id),
        started=started,
        finished=max(finished, started),
        status=cycle_status(runs, errors),
        mode=mode,  # type: ignore[arg-type]
        errors=errors,
        connections=[connection_health(run) for run in runs],
        alignment=alignment_summary(analysis.alignment, analysis.items),
        wsjf=wsjf_rows(analysis),
        writes=writes,
        wip=wip_lanes(config, analysis.items.values()),
    )
    return add_history(result, history)


def result_json(result: CycleResult) -> dict[str, Any]:
    """The document as stored in the runs table (computed fields included, for readers)."""
    return result.model_dump(mode="json")
