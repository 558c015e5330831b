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

from spm_sync.config.flow import FlowConfig
from spm_sync.core.domain import ItemRef, WorkItem
from spm_sync.core.results_flow import FlowCaps, FlowGroupKind, FlowSection, GroupFlow
from spm_sync.engines.alignment import AlignmentResult
from spm_sync.engines.bulk import paused_gc
from spm_sync.engines.flow.facts import ItemFlow
from spm_sync.engines.flow.forecast import forecast_objectives, outlooks_from_flows
from spm_sync.engines.flow.kanban import portfolio_kanban
from spm_sync.engines.flow.metrics import flow_metrics_by_group, value_stream_groups
from spm_sync.engines.flow.settings import FlowSettings
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
    objective_refs, kr_refs = _okr_groups(alignment, flows)
    groups = _groups(alignment, flows, objective_refs, kr_refs, settings, now, namer)
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
    outlooks = outlooks_from_flows(
        flows, objective_refs, targets, now=now, window_days=settings.window_days
    )
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
    alignment: AlignmentResult, flows: Mapping[ItemRef, ItemFlow]
) -> tuple[dict[str, list[ItemRef]], dict[str, list[ItemRef]]]:
    """Each objective's and each Key Result's measured items, as alignment found them."""
    by_kr: dict[str, list[ItemRef]] = {}
    for key_result in alignment.key_results:
        coverage = alignment.coverage.get(key_result.id)
        refs = coverage.items if coverage is not None else ()
        by_kr[key_result.id] = [ref for ref in refs if ref in flows]
    by_objective: dict[str, list[ItemRef]] = {}
    for objective in alignment.objectives:
        members: dict[ItemRef, None] = {}
        for key_result in alignment.key_results:
            if key_result.objective_id == objective.id:
                members.update(dict.fromkeys(by_kr[key_result.id]))
        by_objective[objective.id] = list(members)
    return by_objective, by_kr


def _groups(
    alignment: AlignmentResult,
    flows: Mapping[ItemRef, ItemFlow],
    objective_refs: Mapping[str, list[ItemRef]],
    kr_refs: Mapping[str, list[ItemRef]],
    settings: FlowSettings,
    now: datetime,
    namer: Namer,
) -> list[GroupFlow]:
    """Value streams by name, then each objective followed by its Key Results."""
    wanted: dict[GroupKey, list[ItemRef]] = {}
    streams = value_stream_groups(flows.values())
    for stream in sorted(streams):
        wanted[("value_stream", stream)] = streams[stream]
    for objective_id, refs in objective_refs.items():
        wanted[("objective", objective_id)] = refs
    for kr_id, refs in kr_refs.items():
        wanted[("key_result", kr_id)] = refs
    metrics = flow_metrics_by_group(flows, wanted, settings, now)
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
