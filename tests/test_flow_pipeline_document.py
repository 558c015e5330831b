"""The flow part of the result document: JSON round trip, derived figures, strictness, and the
Key Result coverage bars derived from the alignment part."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from spm_sync.config.flow import ValueStreams
from spm_sync.core.domain import Level, StatusCategory, WorkItem
from spm_sync.core.history import FlowProblem
from spm_sync.core.results import CycleResult
from spm_sync.core.results_flow import (
    AgeingItem,
    FlowItemRef,
    FlowProblemRow,
    FlowSection,
    FlowTime,
    GroupFlow,
    HistorySync,
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
from spm_sync.engines.flow.settings import FlowClass
from spm_sync.pipeline.flow_document import Namer, problem_rows
from spm_sync.pipeline.flow_input import value_streams_of
from tests.report_fixtures import build_cycle_result

AS_OF = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def sample_flow_section() -> FlowSection:
    """A small but complete flow section: one of everything the report renders."""
    ref = FlowItemRef(connection="jira-cloud", key="PAY-9", title="Instant payouts")
    weeks = [
        ThroughputWeek(week_start=date(2026, 2, 2 + 7 * i), count=c)
        for i, c in enumerate((1, 0, 2, 1))
    ]
    group = GroupFlow(
        kind="value_stream",
        id="PAY",
        title="PAY",
        items=10,
        done=4,
        flow_time=FlowTime(p50=12.0, p85=30.5, p95=41.0, sample_size=4),
        velocity_per_week=1.0,
        weekly_throughput=weeks,
        load=3,
        efficiency=None,
        distribution={"feature": 3, "defect": 1},
        wip_distribution={"feature": 3},
        ageing=[
            AgeingItem(
                **ref.model_dump(),
                age_days=44.2,
                status="In Progress",
                stage="implementing",
                exceeds_percentile=95,
            )
        ],
        ageing_over_p85=1,
    )
    column = KanbanColumn(
        stage="implementing",
        cards=[
            KanbanCard(
                **ref.model_dump(), status="In Progress", entered=AS_OF, wsjf=8.5, beyond_limit=True
            )
        ],
        count=3,
        limit=2,
    )
    kanban = PortfolioKanbanView(
        stages=[
            KanbanStage(name="funnel", category=StatusCategory.TODO),
            KanbanStage(name="implementing", category=StatusCategory.IN_PROGRESS),
        ],
        boards=[KanbanBoard(value_stream="PAY", columns=[KanbanColumn(stage="funnel"), column])],
        stage_counts={"funnel": 0, "implementing": 3},
        over_limit=[
            StageOverLimit(value_stream="PAY", stage="implementing", limit=2, count=3, beyond=[ref])
        ],
        stop_starting=[ref],
        stop_starting_count=1,
        over_limit_items=[ref],
        over_limit_item_count=1,
    )
    forecast = ObjectiveForecastRow(
        objective_id="O1",
        title="Grow revenue",
        remaining=6,
        trials=1000,
        p50=date(2026, 4, 6),
        p85=date(2026, 5, 4),
        p95=date(2026, 5, 18),
        target_date=date(2026, 4, 30),
        verdict="at_risk",
        reason="6 open epics 85% likely done by 2026-05-04, after the target 2026-04-30",
    )
    return FlowSection(
        as_of=AS_OF,
        window_days=28,
        items=10,
        groups=[group],
        kanban=kanban,
        forecasts=[forecast],
        problems=[FlowProblemRow(**ref.model_dump(), reason="no status history")],
        problem_count=5,
        history=[HistorySync(connection="jira-cloud", changes_read=12, changes_stored=7)],
    )


def test_flow_section_round_trips_through_the_stored_document() -> None:
    result = build_cycle_result(orphans=3)
    result.flow = sample_flow_section()
    stored = result.model_dump_json()
    back = CycleResult.model_validate_json(stored)
    assert back == result
    assert back.flow is not None
    assert back.flow.objectives_at_risk == ["O1"]
    assert back.flow.problems_omitted == 4
    column = back.flow.kanban.boards[0].columns[1]  # type: ignore[union-attr]
    assert column.over_limit and column.cards_omitted == 2


def test_documents_without_flow_still_read() -> None:
    result = build_cycle_result(orphans=3)
    data = result.model_dump(mode="json")
    data.pop("flow")
    assert CycleResult.model_validate(data).flow is None


def test_weekly_throughput_must_add_up_to_done() -> None:
    with pytest.raises(ValidationError, match="weekly throughput"):
        GroupFlow(
            kind="objective",
            id="O1",
            title="t",
            items=5,
            done=2,
            weekly_throughput=[ThroughputWeek(week_start=date(2026, 1, 5), count=1)],
        )


def test_capped_lists_cannot_outnumber_their_totals() -> None:
    with pytest.raises(ValidationError, match="problem_count"):
        FlowSection(
            as_of=AS_OF,
            window_days=84,
            problems=[FlowProblemRow(connection="c", key="K-1", reason="r")],
            problem_count=0,
        )
    with pytest.raises(ValidationError, match="cards listed"):
        KanbanColumn(stage="s", cards=[KanbanCard(connection="c", key="K", status="x")], count=0)


def test_unknown_keys_and_verdicts_are_rejected() -> None:
    with pytest.raises(ValidationError):
        ObjectiveForecastRow(objective_id="O", title="t", verdict="late", reason="r")
    with pytest.raises(ValidationError):
        FlowSection.model_validate({"as_of": AS_OF, "window_days": 84, "typo": 1})


def test_key_result_coverage_reuses_the_alignment_totals() -> None:
    result = build_cycle_result(orphans=7)
    bars = result.key_result_coverage
    key_results = [kr for o in result.alignment.objectives for kr in o.key_results]
    assert [bar.id for bar in bars[:-1]] == [kr.id for kr in key_results]
    assert [bar.items for bar in bars[:-1]] == [kr.item_count for kr in key_results]
    assert [bar.job_size for bar in bars[:-1]] == [kr.job_size_total for kr in key_results]
    orphans = bars[-1]
    assert orphans.kind == "orphans" and orphans.items == 7


def flow_with_problems(ref: tuple[str, str], problems: tuple[str, ...]) -> ItemFlow:
    return ItemFlow(
        ref=ref,
        flow_class=FlowClass.FEATURE,
        value_streams=(),
        status="New",
        stage=None,
        created=None,
        started=None,
        done=None,
        is_done=False,
        wip=False,
        stage_entered=None,
        active_seconds=0.0,
        wait_seconds=0.0,
        problems=problems,
    )


def test_problems_are_capped_by_connection_and_key_with_their_total() -> None:
    flows = [flow_with_problems(("b", f"K-{n}"), ("one", "two")) for n in range(3)]
    merged = [FlowProblem(("a", "M-1"), "moves between keys form a cycle; kept apart")]
    rows, total = problem_rows(flows, merged, Namer({}), cap=3)
    assert total == 7
    assert [(r.connection, r.key, r.reason) for r in rows] == [
        ("a", "M-1", "moves between keys form a cycle; kept apart"),
        ("b", "K-0", "one"),
        ("b", "K-0", "two"),
    ]


@pytest.mark.parametrize(
    ("streams", "expected"),
    [
        ({"by": "project"}, ("PAY",)),
        ({"by": "area_path"}, ("Contoso\\Payments",)),
        ({"by": "component"}, ("api", "web")),
        ({"by": "connection"}, ("jira",)),
        ({"by": "label", "label_prefix": "VS-"}, ("checkout", "cards")),
    ],
)
def test_value_streams_as_configured(streams: dict[str, str], expected: tuple[str, ...]) -> None:
    item = WorkItem(
        connection="jira",
        key="PAY-1",
        id="1",
        type="Epic",
        level=Level.EPIC,
        title="t",
        status="New",
        status_category=StatusCategory.TODO,
        updated=AS_OF,
        revision="1",
        project="PAY",
        team="Contoso\\Payments",
        components=("api", "web", "api"),
        labels=("vs-checkout", "kr-KR-1", "VS-cards", "vs-"),
    )
    assert value_streams_of(ValueStreams(**streams))(item) == expected
