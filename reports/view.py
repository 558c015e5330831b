"""What the templates show, computed once from a `CycleResult`: grouped, sorted and capped.

The HTML and the text template read the same `ReportView`, so both carry the same facts and
the same "and N more" counts. Templates only format; every decision (what is at risk, which
orphans come first, what a breach is, how much fits into an email) is made here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import groupby

from reports.caps import ALL, UNCAPPED, Caps, Shown
from reports.coverage import Coverage, key_result_coverage
from reports.digest import Digest, WriteLine, build_digest, write_tally
from reports.flow_view import FlowView, build_flow_view
from reports.formatting import format_count, format_pct, format_seconds
from reports.portfolio_view import PortfolioView, build_portfolio_view
from reports.settings import ReportOptions
from spm_sync.core.domain import StatusCategory
from spm_sync.core.results import CycleResult, TrendPoint, WipLane, WsjfRow
from spm_sync.core.results_alignment import (
    AlignedItem,
    KeyResultAlignment,
    ObjectiveAlignment,
    Orphan,
    aligned_item_order,
)
from spm_sync.core.results_health import ConnectionHealth
from spm_sync.core.results_writes import WriteRow, write_row_order


@dataclass(frozen=True)
class Figure:
    """One headline number with its change since the previous run."""

    name: str
    label: str
    value: str
    change: str
    tone: str
    """Colour of the change: "good", "bad" or "neutral"."""
    level: str | None = None
    """Colour of the value for coverage figures: "green", "amber", "red"."""


@dataclass(frozen=True)
class KeyResultView:
    key_result: KeyResultAlignment
    items: Shown[AlignedItem]
    progress: str
    mix: str
    """'2 in progress · 1 to do · 1 done', empty categories left out."""


@dataclass(frozen=True)
class ObjectiveView:
    objective: ObjectiveAlignment
    key_results: list[KeyResultView]
    at_risk: int


@dataclass(frozen=True)
class OrphanGroup:
    connection: str
    team: str
    job_size: float
    orphans: Shown[Orphan]


@dataclass(frozen=True)
class RankedRow:
    row: WsjfRow
    movement: str
    tone: str


@dataclass(frozen=True)
class RankingGroup:
    """One connection's WSJF ranking: ranks are positions in that tracker's own backlog, so
    rows of two trackers are never interleaved by rank."""

    connection: str
    scored: int
    rows: list[RankedRow]


@dataclass(frozen=True)
class LaneCell:
    count: int
    limit: int | None
    breach: bool


@dataclass(frozen=True)
class ReportView:
    result: CycleResult
    options: ReportOptions
    figures: list[Figure]
    previous_label: str | None
    objectives: list[ObjectiveView]
    orphan_groups: Shown[OrphanGroup]
    orphan_count: int
    ranking: list[RankingGroup]
    scored_count: int
    unscored: Shown[WsjfRow]
    lanes: list[tuple[str, str | None, list[LaneCell]]]
    connections: list[tuple[ConnectionHealth, str]]
    trend: Shown[TrendPoint]
    writes: Shown[WriteRow]
    warnings: Shown[str]
    problems: list[str]
    duration: str
    stored_only: list[str]
    """What the result document counts but does not list, and where it is."""
    coverage: Coverage | None = None
    """Items and job size per Key Result, and the orphan work; None without Key Results."""
    flow: FlowView | None = None
    """Flow metrics, Portfolio Kanban, forecasts; None for documents without a flow section."""
    portfolio: PortfolioView | None = None
    """The objective tree, capacity and dependency risk; None without a portfolio section."""
    digest: Digest | None = None
    """The summary at the top (None for an undo run's document, which aligns nothing)."""
    categories: tuple[StatusCategory, ...] = tuple(StatusCategory)
    write_badges: dict[str, str] = field(default_factory=lambda: dict(WRITE_BADGES))

    @property
    def hidden_orphans(self) -> int:
        """Orphans in the groups that did not fit."""
        shown = sum(group.orphans.total for group in self.orphan_groups.rows)
        return self.orphan_count - shown

    @property
    def truncated(self) -> bool:
        """Whether any list was cut, so readers need the full report."""
        lists: list[Shown] = [self.orphan_groups, self.unscored, self.trend, self.writes]
        lists += [self.warnings, *(group.orphans for group in self.orphan_groups.rows)]
        lists += [kr.items for objective in self.objectives for kr in objective.key_results]
        lists += self.flow.lists if self.flow else []
        lists += self.portfolio.lists if self.portfolio else []
        lists += [self.digest.objectives, self.digest.new_orphans] if self.digest else []
        return any(shown.more > 0 for shown in lists)

    @property
    def write_tally(self) -> list[WriteLine]:
        """Writes per tracker and field with what became of them (`reports.digest`)."""
        return write_tally(self.result)

    @property
    def breaches(self) -> int:
        return sum(1 for _, _, cells in self.lanes for cell in cells if cell.breach)


def build_view(result: CycleResult, options: ReportOptions, caps: Caps = UNCAPPED) -> ReportView:
    scored = [r for r in result.wsjf if r.scored]
    unscored = [row for row in result.wsjf if not row.scored]
    previous = result.previous
    trend = list(reversed(result.trend))
    portfolio = _portfolio(result, caps)
    return ReportView(
        result=result,
        options=options,
        figures=headline_figures(result, options),
        previous_label=(
            f"{previous.run_id} ({previous.finished:%d %b %Y})" if previous is not None else None
        ),
        objectives=[_objective(objective, caps) for objective in result.alignment.objectives],
        orphan_groups=Shown.cap(_orphan_groups(result.alignment.orphans, caps), caps.orphan_groups),
        orphan_count=len(result.alignment.orphans),
        ranking=_ranking(result, scored, options.top_n, caps.wsjf_rows),
        scored_count=len(scored),
        unscored=Shown.cap(unscored, caps.unscored),
        lanes=[(lane.team, lane.connection, _lane_cells(lane)) for lane in result.wip],
        connections=[(health, rate_limit_budget(health)) for health in result.connections],
        trend=Shown.cap(trend, caps.trend_points),
        writes=Shown.cap(
            sorted(result.writes.rows, key=write_row_order), caps.writes, result.writes.total
        ),
        warnings=Shown.cap(_warnings(result), caps.warnings),
        problems=result.problems,
        duration=format_seconds((result.finished - result.started).total_seconds()),
        stored_only=stored_only(result),
        coverage=key_result_coverage(result),
        flow=(
            build_flow_view(result.flow, caps, result.finished.date())
            if result.flow is not None
            else None
        ),
        portfolio=portfolio,
        digest=None if result.undoes is not None else build_digest(result, portfolio, caps),
    )


def _portfolio(result: CycleResult, caps: Caps) -> PortfolioView | None:
    if result.portfolio is None:
        return None
    objectives = result.alignment.objectives
    listed = {kr.id for objective in objectives for kr in objective.key_results}
    return build_portfolio_view(result.portfolio, caps, listed, {o.id for o in objectives})


# --- headline --------------------------------------------------------------------------------

HEADLINE_LABELS: tuple[tuple[str, str, int], ...] = (
    # (Headline field, label, +1 when a rise is good / -1 when bad / 0 neutral)
    ("alignment_pct_items", "Aligned work, by item count", +1),
    ("alignment_pct_job_size", "Aligned work, by job size", +1),
    ("orphans", "Orphan items", -1),
    ("uncovered_key_results", "Key Results nothing moves", -1),
    ("unscored", "Items without a WSJF score", -1),
    ("writes_applied", "Writes applied", 0),
    ("writes_planned", "Writes planned", 0),
    ("write_conflicts", "Write conflicts", -1),
)


def headline_figures(result: CycleResult, options: ReportOptions) -> list[Figure]:
    headline, change = result.headline, result.change
    figures = []
    for name, label, good_direction in HEADLINE_LABELS:
        value = getattr(headline, name)
        is_pct = name.startswith("alignment_pct")
        delta = None if change is None else getattr(change, name)
        figures.append(
            Figure(
                name=name,
                label=label,
                value=format_pct(value) if is_pct else format_count(value),
                change=format_change(delta, is_pct, first_run=change is None),
                tone=_tone(delta, good_direction),
                level=coverage_level(value, options) if is_pct else None,
            )
        )
    return figures


def format_change(delta: float | None, is_pct: bool, first_run: bool) -> str:
    """'▲ 2.5 pts', '▼ 3', 'no change', 'first run' (or 'n/a' when a side has no figure)."""
    if first_run:
        return "first run"
    if delta is None:
        return "n/a"
    shown = round(delta, 1) if is_pct else round(delta)
    if shown == 0:
        return "no change"
    arrow = "▲" if shown > 0 else "▼"
    magnitude = f"{abs(shown):.1f} pts" if is_pct else f"{abs(shown):,}"
    return f"{arrow} {magnitude}"


def _tone(delta: float | None, good_direction: int) -> str:
    if delta is None or good_direction == 0 or round(delta, 1) == 0:
        return "neutral"
    return "good" if (delta > 0) == (good_direction > 0) else "bad"


def coverage_level(value: float | None, options: ReportOptions) -> str | None:
    if value is None:
        return None
    if value >= options.coverage_green:
        return "green"
    return "amber" if value >= options.coverage_amber else "red"


# --- sections --------------------------------------------------------------------------------


def _objective(objective: ObjectiveAlignment, caps: Caps) -> ObjectiveView:
    key_results = []
    for key_result in objective.key_results:
        items = sorted(key_result.items, key=_item_order)
        key_results.append(
            KeyResultView(
                key_result=key_result,
                items=Shown.cap(items, caps.kr_items, key_result.item_count),
                progress=_progress(key_result),
                mix=" · ".join(
                    f"{count:,} {category.value.lower()}"
                    for category, count in key_result.status_mix.items()
                    if count
                ),
            )
        )
    at_risk = sum(1 for key_result in objective.key_results if key_result.at_risk)
    return ObjectiveView(objective=objective, key_results=key_results, at_risk=at_risk)


def _progress(key_result: KeyResultAlignment) -> str:
    """'now 16, target 20' and, with a baseline, '60% of the way from 10'."""
    current, target = key_result.current, key_result.target
    if current is None and target is None:
        return ""
    text = f"now {format_count(current)}, target {format_count(target)}"
    progress = key_result.progress_pct
    if progress is None:
        return text
    if key_result.target_met:
        return f"{text}: met"
    return f"{text}: {progress:g}% of the way from {format_count(key_result.baseline)}"


def _item_order(item: AlignedItem) -> tuple[int, float, str]:
    """Work in progress first, then what is next, then what is done; bigger before smaller."""
    return aligned_item_order(item.status_category, item.job_size, item.key)


def _orphan_groups(orphans: Sequence[Orphan], caps: Caps) -> list[OrphanGroup]:
    """Grouped by connection and team; biggest total job size first, then biggest item first."""

    def group_key(orphan: Orphan) -> tuple[str, str]:
        return (orphan.connection, orphan.team or "(no team)")

    groups = []
    for (connection, team), members in groupby(sorted(orphans, key=group_key), key=group_key):
        rows = sorted(members, key=lambda o: (o.job_size is None, -(o.job_size or 0.0), o.key))
        total = sum(orphan.job_size or 0.0 for orphan in rows)
        groups.append(OrphanGroup(connection, team, total, Shown.cap(rows, caps.orphans_per_group)))
    return sorted(groups, key=lambda g: (-g.job_size, -g.orphans.total, g.connection, g.team))


def _ranking(
    result: CycleResult, scored: list[WsjfRow], top_n: int, cap: int
) -> list[RankingGroup]:
    """Per connection (in the run's connection order), its first rows by its own rank: `top_n`
    shared among the connections (at least `MIN_RANKED` each), at most `cap` each."""
    order = {health.name: place for place, health in enumerate(result.connections)}
    by_connection: dict[str, list[WsjfRow]] = {}
    for row in scored:
        by_connection.setdefault(row.connection, []).append(row)
    share = -(-top_n // max(1, len(by_connection)))
    top = min(cap, max(min(MIN_RANKED, top_n), share))
    groups = []
    for connection in sorted(by_connection, key=lambda name: (order.get(name, len(order)), name)):
        rows = sorted(by_connection[connection], key=_rank_order)
        groups.append(RankingGroup(connection, len(rows), [_ranked(row) for row in rows[:top]]))
    return groups


MIN_RANKED = 5
"""Rows each tracker's WSJF table shows at least, however many trackers share `top_n`."""


def _rank_order(row: WsjfRow) -> tuple[int, float, str]:
    return (row.new_rank or ALL, -(row.wsjf or 0.0), row.key)


def _ranked(row: WsjfRow) -> RankedRow:
    movement = row.movement
    if row.old_rank is None:
        return RankedRow(row, "", "neutral")
    if not movement:
        return RankedRow(row, "=", "neutral")
    arrow = "▲" if movement > 0 else "▼"
    return RankedRow(row, f"{arrow}{abs(movement)}", "good" if movement > 0 else "bad")


def _lane_cells(lane: WipLane) -> list[LaneCell]:
    breaches = lane.breaches
    return [
        LaneCell(lane.counts.get(category, 0), lane.limits.get(category), category in breaches)
        for category in StatusCategory
    ]


def rate_limit_budget(health: ConnectionHealth) -> str:
    """'281 of 350 left' from X-RateLimit-* headers; else the headers as seen; else 'not sent'."""
    headers = {name.lower(): value for name, value in health.rate_limit.items()}
    remaining, limit = headers.get("x-ratelimit-remaining"), headers.get("x-ratelimit-limit")
    if remaining and limit:
        return f"{remaining} of {limit} left"
    if health.rate_limit:
        return ", ".join(f"{name}: {value}" for name, value in sorted(health.rate_limit.items()))
    return "not sent"


WRITE_BADGES: dict[str, str] = {
    "failed": "risk",
    "conflict": "warn",
    "written": "ok",
    "planned": "m",
    "unchanged": "m",
}


def stored_only(result: CycleResult) -> list[str]:
    """Notes on the lists the result document capped (see `spm_sync.core.results`): how many rows
    it counts without listing them, and where every row is."""
    notes = []
    key_results = [kr for o in result.alignment.objectives for kr in o.key_results]
    omitted = sum(kr.items_omitted for kr in key_results)
    if omitted:
        listed = max(len(kr.items) for kr in key_results)
        notes.append(
            f"Key Results list at most {listed:,} items each, work in progress and the biggest "
            f"first; {omitted:,} more are counted in their totals and kept in the store with "
            f"run {result.run_id}."
        )
    writes = result.writes
    if writes.rows_omitted:
        notes.append(
            f"The write-back audit lists {len(writes.rows):,} of {writes.total:,} writes, "
            f"failures and conflicts first; `spm-sync report --run {result.run_id}` prints "
            "every one from the store."
        )
    return notes


def _warnings(result: CycleResult) -> list[str]:
    return [
        *(f"{c.name}: {warning}" for c in result.connections for warning in c.warnings),
        *result.alignment.warnings,
    ]
