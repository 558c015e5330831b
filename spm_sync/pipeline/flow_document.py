"""The flow engines' outputs as the document's flow models (`spm_sync.core.results_flow`).

Pure conversions: metrics of a group, the Portfolio Kanban, forecasts and problems, each item
named with its title and link from the items the analysis read, lists capped as `FlowCaps`
says (the first rows in the engine's order, totals kept).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from spm_sync.core.domain import ItemRef, Objective, WorkItem
from spm_sync.core.history import FlowProblem
from spm_sync.core.results_flow import (
    AgeingItem,
    FlowCaps,
    FlowGroupKind,
    FlowItemRef,
    FlowProblemRow,
    FlowTime,
    ForecastVerdict,
    GroupFlow,
    KanbanBoard,
    KanbanCard,
    KanbanColumn,
    KanbanStage,
    ObjectiveForecastRow,
    PortfolioKanbanView,
    StageOverLimit,
    ThroughputWeek,
)
from spm_sync.engines.flow.facts import ItemFlow
from spm_sync.engines.flow.forecast import ForecastStatus, ObjectiveForecast
from spm_sync.engines.flow.kanban import Board, PortfolioKanban
from spm_sync.engines.flow.metrics import FlowMetrics
from spm_sync.engines.flow.settings import StageMap, WipLimits

VERDICTS: dict[ForecastStatus, ForecastVerdict] = {
    ForecastStatus.ON_TRACK: "on_track",
    ForecastStatus.AT_RISK: "at_risk",
    ForecastStatus.NO_TARGET: "no_target",
    ForecastStatus.NO_HISTORY: "no_history",
    ForecastStatus.NOTHING_REMAINING: "nothing_left",
}


class Namer:
    """Names items for the document: connection, key, title and link."""

    def __init__(self, items: Mapping[ItemRef, WorkItem]) -> None:
        self._items = items

    def fields(self, ref: ItemRef) -> dict[str, str | None]:
        item = self._items.get(ref)
        return {
            "connection": ref[0],
            "key": ref[1],
            "title": item.title if item is not None else "",
            "url": item.url if item is not None else None,
        }

    def ref(self, ref: ItemRef) -> FlowItemRef:
        return FlowItemRef(**self.fields(ref))

    def refs(self, refs: Iterable[ItemRef], cap: int) -> list[FlowItemRef]:
        return [self.ref(ref) for ref, _ in zip(refs, range(cap), strict=False)]


def group_flow(
    kind: FlowGroupKind,
    group_id: str,
    title: str,
    metrics: FlowMetrics,
    now: datetime,
    namer: Namer,
    objective_id: str | None = None,
) -> GroupFlow:
    weekly = metrics.weekly_throughput
    flow_time = metrics.flow_time
    return GroupFlow(
        kind=kind,
        id=group_id,
        title=title,
        objective_id=objective_id,
        items=metrics.items,
        done=metrics.done,
        flow_time=None
        if flow_time is None
        else FlowTime(
            p50=round(flow_time.p50, 2),
            p85=round(flow_time.p85, 2),
            p95=round(flow_time.p95, 2),
            sample_size=flow_time.sample_size,
        ),
        velocity_per_week=round(metrics.velocity_per_week, 3),
        weekly_throughput=[
            ThroughputWeek(week_start=(now - timedelta(weeks=len(weekly) - i)).date(), count=n)
            for i, n in enumerate(weekly)
        ],
        load=metrics.load,
        efficiency=None if metrics.efficiency is None else round(metrics.efficiency, 4),
        distribution={cls.value: n for cls, n in metrics.distribution.items()},
        wip_distribution={cls.value: n for cls, n in metrics.wip_distribution.items()},
        ageing=[
            AgeingItem(
                **namer.fields(aged.ref),
                age_days=round(aged.age_days, 2),
                status=aged.status,
                stage=aged.stage,
                exceeds_percentile=aged.exceeds,
            )
            for aged in metrics.ageing
        ],
        ageing_over_p85=metrics.ageing_over_p85,
    )


def kanban_view(
    kanban: PortfolioKanban,
    stage_map: StageMap,
    limits: WipLimits,
    namer: Namer,
    wsjf: Mapping[ItemRef, float],
    caps: FlowCaps,
) -> PortfolioKanbanView:
    over_limit_items, over_limit_item_count = kanban.first_over_limit_items(caps.item_lists)
    return PortfolioKanbanView(
        stages=[KanbanStage(name=s.name, category=s.category) for s in stage_map.stages],
        boards=[_board(board, namer, wsjf, caps) for board in kanban.boards],
        stage_counts=dict(kanban.stage_counts),
        stage_limits=dict(limits.per_stage),
        over_limit=[
            StageOverLimit(
                value_stream=over.value_stream,
                stage=over.stage,
                limit=over.limit,
                count=over.count,
                beyond=namer.refs(over.beyond, caps.item_lists),
            )
            for over in kanban.over_limit
        ],
        stop_starting=namer.refs(kanban.stop_starting, caps.item_lists),
        stop_starting_count=len(kanban.stop_starting),
        over_limit_items=namer.refs(over_limit_items, caps.item_lists),
        over_limit_item_count=over_limit_item_count,
        unplaced_count=len(kanban.unplaced),
    )


def _board(
    board: Board, namer: Namer, wsjf: Mapping[ItemRef, float], caps: FlowCaps
) -> KanbanBoard:
    columns = []
    for column in board.columns:
        cards = [
            KanbanCard(
                **namer.fields(card.ref),
                status=card.status,
                entered=card.entered,
                wsjf=wsjf.get(card.ref),
                beyond_limit=card.beyond_limit,
            )
            for card in column.cards[: caps.cards_per_column]
        ]
        columns.append(
            KanbanColumn(
                stage=column.stage, cards=cards, count=len(column.cards), limit=column.limit
            )
        )
    return KanbanBoard(value_stream=board.value_stream, columns=columns)


def forecast_rows(
    forecasts: Iterable[ObjectiveForecast],
    objectives: Mapping[str, Objective],
    remaining: Mapping[str, int],
) -> list[ObjectiveForecastRow]:
    """One row per forecast; `remaining` counts each objective's open items (a forecast
    that could not be made does not carry it)."""
    rows = []
    for found in forecasts:
        objective = objectives.get(found.objective_id)
        forecast = found.forecast
        rows.append(
            ObjectiveForecastRow(
                objective_id=found.objective_id,
                title=objective.title if objective is not None else found.objective_id,
                remaining=remaining.get(found.objective_id, 0),
                trials=forecast.trials if forecast is not None else 0,
                p50=forecast.p50 if forecast is not None else None,
                p85=forecast.p85 if forecast is not None else None,
                p95=forecast.p95 if forecast is not None else None,
                beyond_horizon=forecast.beyond_horizon if forecast is not None else 0,
                target_date=found.target,
                verdict=VERDICTS[found.status],
                reason=found.reason,
            )
        )
    return rows


def problem_rows(
    flows: Iterable[ItemFlow], merged: Iterable[FlowProblem], namer: Namer, cap: int
) -> tuple[list[FlowProblemRow], int]:
    """The first `cap` problems by connection and key (each item's in the engine's order),
    and how many there are."""
    count = 0

    def every() -> Iterable[tuple[ItemRef, int, str]]:
        nonlocal count
        for problem in merged:
            count += 1
            yield problem.ref, -1, problem.reason
        for flow in flows:
            for position, reason in enumerate(flow.problems):
                count += 1
                yield flow.ref, position, reason

    first = heapq.nsmallest(cap, every())
    rows = [FlowProblemRow(**namer.fields(ref), reason=reason) for ref, _, reason in first]
    return rows, count
