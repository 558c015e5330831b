"""The flow stage: flow metrics per value stream, objective and Key Result, the Portfolio
Kanban against its WIP limits, and completion forecasts per objective, as the document's
flow section.

Runs inside the analysis, after alignment: an objective's and a Key Result's items are the
ones alignment found for them (`KeyResultCoverage.items`; an objective has the items of its
Key Results), limited to the measured levels; an item in several groups counts in each. The
value streams come from the items themselves (`flow.value_streams`). Objectives at risk by
forecast are findings for the report, listed in the section; they never fail the run.

`now` and the random generator come from the caller (the cycle's clock and the configured
seed), so a run can be repeated exactly.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import numpy as np

from spm_sync.config.flow import FlowConfig
from spm_sync.core.domain import ItemRef, WorkItem
from spm_sync.core.results_flow import FlowCaps, FlowGroupKind, FlowSection, GroupFlow
from spm_sync.engines.alignment import AlignmentResult
from spm_sync.engines.bulk import paused_gc
from spm_sync.engines.flow.flow_table import FlowTable, metrics_by_group, value_stream_members
from spm_sync.engines.flow.forecast import forecast_objectives
from spm_sync.engines.flow.history_arrays import Ints
from spm_sync.engines.flow.kanban import portfolio_kanban
from spm_sync.engines.wsjf import Score
from spm_sync.pipeline.flow_document import (
    Namer,
    forecast_rows,
    group_flow,
    kanban_view,
    problem_rows,
)
from spm_sync.pipeline.flow_input import derive_all_flows, measured_items
from spm_sync.store import Store

log = logging.getLogger(__name__)

GroupKey = tuple[FlowGroupKind, str]


def forecast_rng(config: FlowConfig) -> random.Random:
    """Seeded when the config says so (repeatable forecasts), else fresh each run."""
    seed = config.forecast.seed
    return random.Random(seed) if seed is not None else random.Random()


@paused_gc()
def measure_flow(
    config: FlowConfig,
    store: Store,
    items: Mapping[ItemRef, WorkItem],
    alignment: AlignmentResult,
    scores: Sequence[Score],
    *,
    now: datetime,
    rng: random.Random,
    caps: FlowCaps | None = None,
) -> FlowSection:
    """The flow section of this cycle, from the stored items' status history."""
    caps = caps or FlowCaps()
    settings = config.settings()
    by_connection: dict[str, list[WorkItem]] = defaultdict(list)
    for item in measured_items(items.values(), config):
        by_connection[item.connection].append(item)
    measured = derive_all_flows(store, by_connection, config, settings, now)
    del by_connection
    flows = measured.flows
    namer = Namer(items)
    table = FlowTable(flows, settings, now, measured.columns)
    objective_members, kr_members = _okr_groups(alignment, table)
    groups = _groups(alignment, table, objective_members, kr_members, now, namer)
    kanban = None
    if settings.stage_map.configured:
        limits = config.limits()
        board = portfolio_kanban(
            flows.values(),
            settings.stage_map,
            limits,
            done_since=now - timedelta(days=settings.window_days),
        )
        wsjf = {(s.connection, s.item_key): s.wsjf for s in scores if s.wsjf is not None}
        kanban = kanban_view(board, settings.stage_map, limits, namer, wsjf, caps)
    targets = {o.id: o.target_date for o in alignment.objectives if o.target_date is not None}
    outlooks = [
        table.outlook(objective_id, members, targets.get(objective_id))
        for objective_id, members in objective_members.items()
    ]
    forecasts = forecast_objectives(
        outlooks, today=now.date(), rng=rng, trials=config.forecast.trials
    )
    problems, problem_count = problem_rows(flows.values(), measured.problems, namer, caps.problems)
    return FlowSection(
        as_of=now,
        window_days=settings.window_days,
        start=settings.start.value,
        value_streams_by=config.value_streams.by,
        efficiency_measured=settings.measures_efficiency,
        levels=[level.label for level in sorted(set(config.levels), reverse=True)],
        items=len(flows),
        items_with_history=measured.items_with_history,
        groups=groups,
        kanban=kanban,
        forecasts=forecast_rows(
            forecasts,
            {o.id: o for o in alignment.objectives},
            {outlook.objective_id: outlook.remaining for outlook in outlooks},
        ),
        problems=problems,
        problem_count=problem_count,
        caps=caps,
    )


def _okr_groups(
    alignment: AlignmentResult, table: FlowTable
) -> tuple[dict[str, Ints], dict[str, Ints]]:
    """Each objective's and each Key Result's measured items, as alignment found them (item
    indexes of `table`, each once, in the order alignment gives them)."""
    by_kr: dict[str, Ints] = {}
    for key_result in alignment.key_results:
        coverage = alignment.coverage.get(key_result.id)
        by_kr[key_result.id] = table.members(coverage.items if coverage is not None else ())
    by_objective: dict[str, Ints] = {}
    for objective in alignment.objectives:
        parts = [by_kr[kr.id] for kr in alignment.key_results if kr.objective_id == objective.id]
        joined = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        # Each item once, at its first place (as dict.fromkeys over the refs).
        _, first = np.unique(joined, return_index=True)
        by_objective[objective.id] = joined[np.sort(first)]
    return by_objective, by_kr


def _groups(
    alignment: AlignmentResult,
    table: FlowTable,
    objective_members: Mapping[str, Ints],
    kr_members: Mapping[str, Ints],
    now: datetime,
    namer: Namer,
) -> list[GroupFlow]:
    """Value streams by name, then each objective followed by its Key Results."""
    wanted: dict[GroupKey, Ints] = {}
    streams = value_stream_members(table)
    for stream in sorted(streams):
        wanted[("value_stream", stream)] = streams[stream]
    for objective_id, members in objective_members.items():
        wanted[("objective", objective_id)] = members
    for kr_id, members in kr_members.items():
        wanted[("key_result", kr_id)] = members
    metrics = metrics_by_group(table, wanted)
    groups = [
        group_flow("value_stream", stream, stream, metrics[("value_stream", stream)], now, namer)
        for stream in sorted(streams)
    ]
    for objective in alignment.objectives:
        key: GroupKey = ("objective", objective.id)
        groups.append(
            group_flow("objective", objective.id, objective.title, metrics[key], now, namer)
        )
        for key_result in alignment.key_results:
            if key_result.objective_id != objective.id:
                continue
            groups.append(
                group_flow(
                    "key_result",
                    key_result.id,
                    key_result.title,
                    metrics[("key_result", key_result.id)],
                    now,
                    namer,
                    objective_id=objective.id,
                )
            )
    return groups


def cycle_flow(
    config: FlowConfig,
    store: Store,
    items: Mapping[ItemRef, WorkItem],
    alignment: AlignmentResult,
    scores: Sequence[Score],
    now: datetime,
) -> tuple[FlowSection | None, str | None]:
    """The cycle's flow section, or why there is none. Flow is a finding beside the sync: when
    it cannot be measured, the run goes on (items, alignment, writes, report) with the error
    as one of its problems."""
    if not config.enabled:
        return None, None
    try:
        section = measure_flow(
            config, store, items, alignment, scores, now=now, rng=forecast_rng(config)
        )
    except Exception as error:
        log.warning("measuring flow failed", exc_info=True)
        text = str(error).strip().splitlines()[0] if str(error).strip() else ""
        reason = f"{type(error).__name__}: {text}" if text else type(error).__name__
        return None, f"flow: not measured: {reason}"
    return section, None
