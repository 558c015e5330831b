"""Whatever the histories look like, the flow engine reports instead of crashing, and what it
derives stays consistent (generated histories: skew, gaps, unknown and unmapped statuses)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from spm_sync.core.domain import StatusCategory
from spm_sync.core.history import FlowItem, StatusChange, merge_moved
from spm_sync.engines.flow.facts import derive_flows, flow_problems
from spm_sync.engines.flow.forecast import forecast_objectives, outlooks_from_flows
from spm_sync.engines.flow.kanban import portfolio_kanban
from spm_sync.engines.flow.metrics import flow_metrics_by_group, value_stream_groups
from spm_sync.engines.flow.settings import FlowSettings, FlowStart, Stage, StageMap, WipLimits

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=50)
STATUSES = ["Open", "In Progress", "Review", "Done", "Mystery", "Parked"]
CATEGORIES = [None, *StatusCategory]
STAGES = StageMap(
    (
        Stage("Funnel", StatusCategory.TODO),
        Stage("Implementing", StatusCategory.IN_PROGRESS),
        Stage("Done", StatusCategory.DONE),
    ),
    {"Open": "Funnel", "In Progress": "Implementing", "Review": "Implementing", "Done": "Done"},
)

moments = st.one_of(
    st.none(), st.floats(min_value=-10, max_value=70).map(lambda d: T0 + timedelta(days=d))
)


@st.composite
def flow_items(draw: st.DrawFn) -> list[FlowItem]:
    items = []
    for n in range(draw(st.integers(min_value=1, max_value=6))):
        ref = ("jira", f"K-{n}")
        changes = tuple(
            StatusChange(
                ref,
                T0 + timedelta(days=draw(st.floats(min_value=-10, max_value=70))),
                draw(st.one_of(st.none(), st.sampled_from(STATUSES))),
                draw(st.sampled_from(STATUSES)),
                draw(st.sampled_from(CATEGORIES)),
            )
            for _ in range(draw(st.integers(min_value=0, max_value=6)))
        )
        items.append(
            FlowItem(
                ref,
                draw(st.sampled_from(["Epic", "Bug"])),
                draw(moments),
                draw(st.sampled_from(STATUSES)),
                draw(st.sampled_from(list(StatusCategory))),
                changes,
                tuple(draw(st.lists(st.sampled_from(["A", "B"]), max_size=2, unique=True))),
                resolved=draw(moments),
                former_refs=(("jira", f"K-{n - 1}"),) if n and draw(st.booleans()) else (),
            )
        )
    return items


@settings(max_examples=100, deadline=None)
@given(flow_items(), st.sampled_from(list(FlowStart)), st.booleans())
def test_generated_histories_never_crash_and_stay_consistent(
    items: list[FlowItem], start: FlowStart, staged: bool
) -> None:
    items, _ = merge_moved(items)
    flow_settings = FlowSettings(
        stage_map=STAGES if staged else StageMap(),
        start=start,
        active_statuses=frozenset({"In Progress"}),
        wait_statuses=frozenset({"Review"}),
        window_days=30,
    )
    flows = derive_flows(items, flow_settings, NOW)
    assert set(flows) == {item.ref for item in items}
    for flow in flows.values():
        assert not (flow.wip and flow.is_done)
        assert flow.active_seconds >= 0 and flow.wait_seconds >= 0
        if flow.created is not None:
            assert flow.created <= NOW
            if flow.started is not None:
                assert flow.created <= flow.started <= NOW
        if flow.started is not None and flow.done is not None:
            assert flow.started <= flow.done <= NOW
        days = flow.flow_days(start)
        assert days is None or days >= 0
    flow_problems(flows.values())
    metrics = flow_metrics_by_group(flows, value_stream_groups(flows.values()), flow_settings, NOW)
    for group in metrics.values():
        assert group.done <= group.items and group.load <= group.items
    if staged:
        board = portfolio_kanban(flows.values(), STAGES, WipLimits({"Implementing": 1}))
        placed = {card.ref for b in board.boards for c in b.columns for card in c.cards}
        assert placed | {u.ref for u in board.unplaced} == set(flows)
    outlooks = outlooks_from_flows(
        flows, {"O": list(flows)}, {"O": date(2026, 3, 1)}, now=NOW, window_days=30
    )
    forecast_objectives(outlooks, today=NOW.date(), rng=random.Random(0), trials=200)
