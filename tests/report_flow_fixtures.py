"""A builder of realistic flow sections (`CycleResult.flow`) for the report's tests.

Items are spread over value streams and Portfolio Kanban stages from a seeded RNG; every figure
is derived from those placements the way the flow stage derives it (cards oldest entry first,
cards past a limit are the most recent entries, throughput adds up to `done`, the document's
caps applied with their totals), so the report is checked against a document that could have
come from a real run, at any size.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, timedelta

from spm_sync.core.domain import StatusCategory
from spm_sync.core.results import CycleResult
from spm_sync.core.results_flow import (
    CARDS_PER_COLUMN_CAP,
    FLOW_PROBLEMS_CAP,
    ITEM_LIST_CAP,
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
from tests.report_fixtures import FINISHED, JIRA, JIRA_URL, build_cycle_result

AS_OF = FINISHED
WEEKS = 12
STREAMS = (
    ("Payments", "PAY"),
    ("Growth", "GROW"),
    ("Platform SRE", "SRE"),
    ("Mobile", "MOB"),
    ("Data", "DATA"),
    ("Identity", "IDN"),
    ("Billing", "BIL"),
    ("Search", "SRCH"),
    ("Partner API", "API"),
    ("Analytics", "ANA"),
    ("Checkout", "CHK"),
    ("Onboarding", "ONB"),
    ("Messaging", "MSG"),
    ("Compliance", "CMP"),
)
STAGES = (
    ("Funnel", StatusCategory.TODO, 3),
    ("Reviewing", StatusCategory.TODO, 2),
    ("Analyzing", StatusCategory.TODO, 2),
    ("Portfolio Backlog", StatusCategory.TODO, 2),
    ("Implementing", StatusCategory.IN_PROGRESS, 4),
    ("Done", StatusCategory.DONE, 3),
)
"""(stage, category, weight): how many items land in each stage, relatively."""
STREAM_LIMITS = {"Analyzing": 3, "Implementing": 6}
PORTFOLIO_LIMITS = {"Implementing": 40}
TITLES = (
    "Instant payouts for marketplace sellers",
    "Self-serve SSO setup",
    "Multi-region failover",
    "Offline mode for field agents",
    "Usage-based pricing",
    "Streaming ledger",
    "Partner onboarding portal",
    "Search relevance tuning",
    "GDPR data export",
    "Push notification preferences",
)
CLASSES = ("feature", "feature", "feature", "defect", "risk", "debt")
VERDICTS = ("at_risk", "on_track", "no_target", "no_history", "on_track", "nothing_left")


class _Card:
    def __init__(self, number: int, stream: str, prefix: str, stage: str, rng: random.Random):
        self.ref = FlowItemRef(
            connection=JIRA,
            key=f"{prefix}-{1000 + number}",
            title=f"{TITLES[number % len(TITLES)]} ({number + 1})",
            url=f"{JIRA_URL}{prefix}-{1000 + number}",
        )
        self.stream, self.stage = stream, stage
        self.entered = AS_OF - timedelta(days=rng.uniform(0.5, 160), hours=number % 24)
        self.wsjf = None if number % 7 == 3 else round(rng.uniform(0.5, 20), 2)
        self.flow_class = CLASSES[number % len(CLASSES)]


def build_flow_section(result: CycleResult, *, items: int = 120, streams: int = 5, seed: int = 11):
    """A flow section over `items` items in the first `streams` value streams."""
    rng = random.Random(seed)
    chosen = STREAMS[:streams]
    weights = [len(chosen) - n for n in range(len(chosen))]  # the first streams are busiest
    stage_weights = [weight for *_, weight in STAGES]
    cards = []
    for number in range(items):
        stream, prefix = rng.choices(chosen, weights)[0]
        stage = rng.choices([name for name, *_ in STAGES], stage_weights)[0]
        cards.append(_Card(number, stream, prefix, stage, rng))
    placed: dict[str, dict[str, list[_Card]]] = defaultdict(lambda: defaultdict(list))
    for card in sorted(cards, key=lambda c: c.entered):  # oldest entry first
        placed[card.stream][card.stage].append(card)
    kanban, beyond = _kanban(chosen, placed)
    return FlowSection(
        as_of=AS_OF,
        window_days=WEEKS * 7,
        efficiency_measured=True,
        items=items,
        groups=[_group(stream, placed[stream], beyond, rng) for stream, _ in chosen],
        kanban=kanban,
        forecasts=_forecasts(result),
        problems=[
            FlowProblemRow(**card.ref.model_dump(), reason=_problem(n))
            for n, card in enumerate(sorted(cards, key=lambda c: c.ref.key)[::20])
        ][:FLOW_PROBLEMS_CAP],
        problem_count=len(cards[::20]),
        history=[HistorySync(connection=JIRA, changes_read=items * 3, changes_stored=items)],
    )


def build_flow_cycle_result(*, items: int = 120, streams: int = 5, **kwargs) -> CycleResult:
    """`build_cycle_result(**kwargs)` with a flow section attached."""
    result = build_cycle_result(**kwargs)
    result.flow = build_flow_section(result, items=items, streams=streams)
    return result


def _kanban(chosen, placed) -> tuple[PortfolioKanbanView, set[str]]:
    boards, over_limit, beyond_cards = [], [], []
    for stream, _ in chosen:
        columns = []
        for stage, *_ in STAGES:
            stage_cards = placed[stream][stage]
            limit = STREAM_LIMITS.get(stage)
            past = stage_cards[limit:] if limit is not None else []
            beyond_cards += past
            if past:
                over_limit.append(
                    StageOverLimit(
                        value_stream=stream,
                        stage=stage,
                        limit=limit,
                        count=len(stage_cards),
                        beyond=[c.ref for c in reversed(past)][:ITEM_LIST_CAP],
                    )
                )
            columns.append(
                KanbanColumn(
                    stage=stage,
                    cards=[_kanban_card(c, c in past) for c in stage_cards[:CARDS_PER_COLUMN_CAP]],
                    count=len(stage_cards),
                    limit=limit,
                )
            )
        boards.append(KanbanBoard(value_stream=stream, columns=columns))
    counts = {stage: sum(len(placed[s][stage]) for s, _ in chosen) for stage, *_ in STAGES}
    for stage, limit in PORTFOLIO_LIMITS.items():
        if counts[stage] > limit:
            over_limit.append(StageOverLimit(stage=stage, limit=limit, count=counts[stage]))
    recent_first = sorted(beyond_cards, key=lambda c: c.entered, reverse=True)
    kanban = PortfolioKanbanView(
        stages=[KanbanStage(name=name, category=category) for name, category, _ in STAGES],
        boards=boards,
        stage_counts=counts,
        stage_limits=PORTFOLIO_LIMITS,
        over_limit=over_limit,
        stop_starting=[c.ref for c in recent_first][:ITEM_LIST_CAP],
        stop_starting_count=len(recent_first),
        over_limit_items=sorted((c.ref for c in beyond_cards), key=lambda r: r.key)[:ITEM_LIST_CAP],
        over_limit_item_count=len(beyond_cards),
    )
    return kanban, {c.ref.key for c in beyond_cards}


def _kanban_card(card: _Card, beyond: bool) -> KanbanCard:
    return KanbanCard(
        **card.ref.model_dump(),
        status=card.stage,
        entered=card.entered,
        wsjf=card.wsjf,
        beyond_limit=beyond,
    )


def _group(stream: str, stages: dict[str, list[_Card]], beyond: set[str], rng: random.Random):
    in_progress = [
        c for name, cat, _ in STAGES if cat is StatusCategory.IN_PROGRESS for c in stages[name]
    ]
    done_cards = stages["Done"]
    done = len(done_cards)
    weeks = [0] * WEEKS
    for _ in range(done):
        weeks[rng.randrange(WEEKS)] += 1
    p50 = round(rng.uniform(8, 25), 1)
    flow_time = (
        FlowTime(p50=p50, p85=round(p50 * 2.1, 1), p95=round(p50 * 3.2, 1), sample_size=done)
        if done
        else None
    )
    ages = sorted(in_progress, key=lambda c: c.entered)
    ageing = [
        AgeingItem(
            **card.ref.model_dump(),
            age_days=round((AS_OF - card.entered).total_seconds() / 86400, 1),
            status=card.stage,
            stage=card.stage,
            exceeds_percentile=_exceeds((AS_OF - card.entered).days, flow_time),
        )
        for card in ages[:5]
    ]
    total = sum(len(cards) for cards in stages.values())
    return GroupFlow(
        kind="value_stream",
        id=stream,
        title=stream,
        items=total,
        done=done,
        flow_time=flow_time,
        velocity_per_week=round(done / WEEKS, 2),
        weekly_throughput=[
            ThroughputWeek(week_start=(AS_OF - timedelta(weeks=WEEKS - n)).date(), count=count)
            for n, count in enumerate(weeks)
        ],
        load=len(in_progress),
        efficiency=None if stream == "Data" else round(rng.uniform(0.15, 0.6), 2),
        distribution=_classes(done_cards),
        wip_distribution=_classes(in_progress),
        ageing=ageing,
        ageing_over_p85=sum(
            1 for c in in_progress if flow_time and (AS_OF - c.entered).days > flow_time.p85
        ),
    )


def _classes(cards: list[_Card]) -> dict:
    counts: dict[str, int] = defaultdict(int)
    for card in cards:
        counts[card.flow_class] += 1
    return dict(counts)


def _exceeds(age: float, flow_time: FlowTime | None):
    if flow_time is None:
        return None
    for percent, value in ((95, flow_time.p95), (85, flow_time.p85), (50, flow_time.p50)):
        if age > value:
            return percent
    return None


def _forecasts(result: CycleResult) -> list[ObjectiveForecastRow]:
    today = AS_OF.date()
    rows = []
    for n, objective in enumerate(result.alignment.objectives):
        verdict = VERDICTS[n % len(VERDICTS)]
        target = date(2026, 6, 30) if verdict not in ("no_target",) else None
        dated = verdict in ("at_risk", "on_track", "no_target")
        p50 = today + timedelta(weeks=6 + 3 * n)
        rows.append(
            ObjectiveForecastRow(
                objective_id=objective.id,
                title=objective.title,
                remaining=0 if verdict == "nothing_left" else 7 + 4 * n,
                trials=10_000 if dated else 0,
                p50=p50 if dated else None,
                p85=p50 + timedelta(weeks=5 if verdict == "at_risk" else 2) if dated else None,
                p95=p50 + timedelta(weeks=9 if verdict == "at_risk" else 3) if dated else None,
                target_date=target
                if verdict == "at_risk"
                else (target and p50 + timedelta(weeks=8)),
                verdict=verdict,
                reason=_reason(verdict),
            )
        )
    if rows and rows[0].verdict == "at_risk" and rows[0].p85 and rows[0].target_date:
        rows[0] = rows[0].model_copy(update={"target_date": rows[0].p85 - timedelta(weeks=3)})
    return rows


def _reason(verdict: str) -> str:
    return {
        "at_risk": "85% likely done after the target date: scope or capacity must change",
        "on_track": "85% likely done before the target date",
        "no_target": "the OKR file gives this objective no target date",
        "no_history": "no item of this objective was done in the last 12 weeks",
        "nothing_left": "every item of this objective is done",
    }[verdict]


def _problem(number: int) -> str:
    return (
        "no status history: flow time unknown",
        "status 'Parked' maps to no stage",
        "clock skew: resolved before it was created, kept at its start",
    )[number % 3]
