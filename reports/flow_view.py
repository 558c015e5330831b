"""What the report shows about flow, computed once from `CycleResult.flow`: ordered and capped.

Like `reports.view`, every decision is made here and the templates only format: which value
streams come first (the busiest), which boards come first (those over a limit), which
forecasts come first (at risk), which work in progress is the oldest. The HTML and the text
read the same `FlowView`, so both carry the same numbers and "and N more" counts.

The document already caps some lists itself (cards per column, stop starting, problems; see
`spm_sync.core.results_flow`); their totals come from the document, so "N more" counts every item.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from reports.caps import Caps, Shown
from reports.formatting import format_count
from spm_sync.core.domain import StatusCategory
from spm_sync.core.results_flow import (
    AgeingItem,
    FlowItemRef,
    FlowProblemRow,
    FlowSection,
    GroupFlow,
    KanbanBoard,
    KanbanCard,
    KanbanColumn,
    ObjectiveForecastRow,
    PortfolioKanbanView,
)

NO_STREAM = "(no value stream)"
DONE = StatusCategory.DONE
MAX_CHART_STREAMS = 12
"""Value streams drawn in each flow chart (the busiest); the table lists them all."""

VERDICTS: dict[str, tuple[str, str, int]] = {
    # verdict: (label, badge class, order: what needs a decision first)
    "at_risk": ("AT RISK", "risk", 0),
    "no_history": ("NO HISTORY", "warn", 1),
    "no_target": ("NO TARGET DATE", "m", 2),
    "on_track": ("ON TRACK", "ok", 3),
    "nothing_left": ("NOTHING LEFT", "ok", 4),
}


@dataclass(frozen=True)
class StreamRow:
    """One value stream in the flow table."""

    group: GroupFlow
    efficiency: str
    """'62%', or 'n/a' when active/wait statuses are not configured."""
    distribution: str
    """'12 feature · 3 defect', biggest class first."""


@dataclass(frozen=True)
class ColumnView:
    column: KanbanColumn
    cards: Shown[KanbanCard]
    """Total: every card of the stage, listed in the document or not."""
    over_by: int


@dataclass(frozen=True)
class BoardView:
    name: str
    columns: list[ColumnView]
    cards: int
    over_limit: int
    """Stages of this board over their limit."""


@dataclass(frozen=True)
class ForecastView:
    row: ObjectiveForecastRow
    verdict: str
    badge: str
    p50: str
    p85: str
    p95: str
    target: str


@dataclass(frozen=True)
class AgeingRow:
    item: AgeingItem
    stream: str


@dataclass(frozen=True)
class FlowView:
    section: FlowSection
    streams: Shown[StreamRow]
    kanban: PortfolioKanbanView | None
    stages: list[str]
    """Stage names in board order, for the overview's portfolio line."""
    overview: Shown[BoardView]
    """Every board's counts against limits (one row each: cheap, so more of them fit)."""
    boards: Shown[BoardView]
    """The boards whose cards are listed, those over a limit first."""
    stop_starting: Shown[FlowItemRef]
    stop_starting_where: dict[tuple[str, str], str]
    """'Growth · Implementing 17 / 6' per (connection, key): the full stage each item entered,
    from the over-limit list (which names at most `FlowCaps.item_lists` items per stage)."""
    forecasts: Shown[ForecastView]
    """At risk first, so a capped table still names every objective in trouble it can."""
    forecasts_at_risk: int
    """Of all objectives forecast, not only the rows shown."""
    ageing: Shown[AgeingRow]
    in_progress: int
    """Work in progress across the value streams (the ageing list names the oldest)."""
    over_p85: int
    """Of it, items older than their stream's 85th percentile flow time."""
    problems: Shown[FlowProblemRow]

    @property
    def lists(self) -> list[Shown]:
        """Every capped list, for `ReportView.truncated`."""
        columns = [column.cards for board in self.boards.rows for column in board.columns]
        lists: list[Shown] = [self.streams, self.overview, self.boards, self.stop_starting]
        return [*lists, self.forecasts, self.ageing, self.problems, *columns]

    @property
    def flow_time_alt(self) -> str:
        """The flow-time chart's numbers in words: readers who do not see the image (or whose
        mail client holds images back) get the same figures."""
        rows = charted_flow_times(value_streams(self.section))
        described = "; ".join(
            f"{g.title} {format_days(g.flow_time.p50)}, {format_days(g.flow_time.p85)}, "
            f"{format_days(g.flow_time.p95)}"
            for g in rows
            if g.flow_time is not None
        )
        return (
            "Flow time in days, 50%, 85% and 95% of items done within, per value stream: "
            f"{described}."
        )

    @property
    def throughput_alt(self) -> str:
        """The throughput chart's weekly counts in words, like `flow_time_alt`."""
        rows = charted_throughputs(value_streams(self.section))
        weeks = len(rows[0].weekly_throughput) if rows else 0
        described = "; ".join(
            f"{g.title} {', '.join(str(w.count) for w in g.weekly_throughput)} "
            f"({g.velocity_per_week:.1f} per week)"
            for g in rows
        )
        return f"Items done per week over the last {weeks} weeks, per value stream: {described}."

    @property
    def over_limit_stages(self) -> int:
        return len(self.kanban.over_limit) if self.kanban else 0


def value_streams(section: FlowSection) -> list[GroupFlow]:
    """The value streams, busiest first (most items, then most work in progress): the order of
    the table and of the charts, so caps leave out the smallest streams."""
    streams = section.groups_of("value_stream")
    return sorted(streams, key=lambda group: (-group.items, -group.load, group.title))


def charted_flow_times(streams: Iterable[GroupFlow]) -> list[GroupFlow]:
    """The streams the flow-time chart draws: the busiest with a flow time."""
    return [group for group in streams if group.flow_time is not None][:MAX_CHART_STREAMS]


def charted_throughputs(streams: Iterable[GroupFlow]) -> list[GroupFlow]:
    """The streams the throughput chart draws: the busiest with a weekly series."""
    return [group for group in streams if group.weekly_throughput][:MAX_CHART_STREAMS]


def build_flow_view(section: FlowSection, caps: Caps, today: date) -> FlowView:
    streams = value_streams(section)
    kanban = section.kanban
    done_stages = {
        stage.name for stage in (kanban.stages if kanban else []) if stage.category is DONE
    }
    boards = sorted(
        (_board(board, done_stages, caps) for board in (kanban.boards if kanban else [])),
        key=lambda board: (-board.over_limit, -board.cards, board.name),
    )
    ageing = _ageing(streams)
    forecasts = _forecasts(section.forecasts, today)
    return FlowView(
        section=section,
        streams=Shown.cap([_stream(group) for group in streams], caps.value_streams),
        kanban=kanban,
        stages=[stage.name for stage in kanban.stages] if kanban else [],
        overview=Shown.cap(boards, caps.value_streams),
        boards=Shown.cap(boards, caps.kanban_boards),
        stop_starting=Shown.cap(
            kanban.stop_starting if kanban else [],
            caps.stop_starting,
            kanban.stop_starting_count if kanban else 0,
        ),
        stop_starting_where=_where_beyond(kanban),
        forecasts=Shown.cap(forecasts, caps.forecasts),
        forecasts_at_risk=sum(1 for forecast in forecasts if forecast.row.at_risk),
        ageing=Shown.cap(ageing, caps.ageing),
        in_progress=sum(group.load for group in streams),
        over_p85=sum(group.ageing_over_p85 for group in streams),
        problems=Shown.cap(section.problems, caps.flow_problems, section.problem_count),
    )


def format_days(days: float | None) -> str:
    """'4.5' under ten days, '12' from there: a tenth of a day matters only for short times."""
    if days is None:
        return "–"
    return f"{days:.1f}" if days < 10 else f"{days:,.0f}"


def _stream(group: GroupFlow) -> StreamRow:
    classes = sorted(group.distribution.items(), key=lambda pair: (-pair[1], pair[0]))
    return StreamRow(
        group=group,
        efficiency="n/a" if group.efficiency is None else f"{group.efficiency * 100:.0f}%",
        distribution=" · ".join(f"{format_count(n)} {name}" for name, n in classes if n),
    )


def _board(board: KanbanBoard, done_stages: set[str], caps: Caps) -> BoardView:
    columns = [
        ColumnView(
            column=column,
            cards=Shown.cap(
                column.cards,
                caps.kanban_done_cards if column.stage in done_stages else caps.kanban_cards,
                column.count,
            ),
            over_by=max(0, column.count - column.limit) if column.limit is not None else 0,
        )
        for column in board.columns
    ]
    return BoardView(
        name=board.value_stream or NO_STREAM,
        columns=columns,
        cards=sum(column.count for column in board.columns),
        over_limit=sum(1 for column in board.columns if column.over_limit),
    )


def _where_beyond(kanban: PortfolioKanbanView | None) -> dict[tuple[str, str], str]:
    """Where each item past a limit is. A stream's own limit is named before the portfolio's,
    which says less about where the work sits."""
    where: dict[tuple[str, str], str] = {}
    for over in sorted(kanban.over_limit if kanban else [], key=lambda o: o.value_stream is None):
        place = f"{over.value_stream or 'portfolio'} · {over.stage} {over.count:,} / {over.limit:,}"
        for ref in over.beyond:
            where.setdefault((ref.connection, ref.key), place)
    return where


def _forecasts(rows: Iterable[ObjectiveForecastRow], today: date) -> list[ForecastView]:
    ordered = sorted(rows, key=lambda row: VERDICTS[row.verdict][2])  # stable: OKR order kept
    views = []
    for row in ordered:
        label, badge, _ = VERDICTS[row.verdict]
        views.append(
            ForecastView(
                row=row,
                verdict=label,
                badge=badge,
                p50=_date(row.p50, today),
                p85=_date(row.p85, today),
                p95=_date(row.p95, today),
                target=_date(row.target_date, today),
            )
        )
    return views


def _date(value: date | None, today: date) -> str:
    """'04 May', with the year only when it is not this year's: five dates fit a phone row."""
    if value is None:
        return "–"
    return f"{value:%d %b}" if value.year == today.year else f"{value:%d %b %Y}"


def _ageing(streams: Iterable[GroupFlow]) -> list[AgeingRow]:
    """The oldest work in progress of every stream, oldest first; an item named by two
    streams (it should not be, streams partition the items) is listed once."""
    seen: set[tuple[str, str]] = set()
    rows = []
    for group in streams:
        for item in group.ageing:
            if (item.connection, item.key) not in seen:
                seen.add((item.connection, item.key))
                rows.append(AgeingRow(item=item, stream=group.title))
    return sorted(rows, key=lambda row: (-row.item.age_days, row.item.connection, row.item.key))
