"""The portfolio stage in a whole cycle over in-memory trackers whose connector answers saved
queries: Key Results measured by their queries (one batch per connection and run), a query
the tracker refuses, one that matches nothing, a connector that cannot answer queries, a cycle
in the OKR tree, a conflict between the OKR file and a tracker objective, a team with zero
capacity, and dependency risk; and the section in the result document's JSON."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.base import (
    Connector,
    QueryAnswer,
    QueryingConnector,
    QueryMatch,
    QueryRefused,
    TrackerQuery,
)
from spm_sync.config.model import Config, WriteMode, load_config
from spm_sync.core.domain import Link, StatusCategory, WorkItem
from spm_sync.core.results import CycleResult
from spm_sync.core.results_portfolio import KeyResultProgress, PortfolioSection
from spm_sync.pipeline.cycle import CycleDeps, CycleOutcome, run_cycle
from spm_sync.store import Store
from tests.cycle_fixtures import Clock, FakeConnector, FakeTracker, fake_config, three_epics

OKRS: dict[str, Any] = {
    "objectives": [
        {
            "id": "O1",
            "title": "Grow",
            "key_results": [
                {
                    "id": "KR-1",
                    "title": "Five epics labelled",
                    "target": 5,
                    "baseline": 0,
                    "weight": 3,
                    "measure": {"kind": "count", "query": {"alpha": "label:kr-KR-1"}},
                },
                {
                    "id": "KR-2",
                    "title": "Churn work done",
                    "target": 100,
                    "baseline": 0,
                    "weight": 1,
                    "measure": {"kind": "share_done", "query": {"alpha": "label:kr-KR-2"}},
                },
                {
                    "id": "KR-3",
                    "title": "Points shipped",
                    "target": 50,
                    "baseline": 0,
                    "measure": {"kind": "sum", "field": "Size", "query": {"alpha": "refuse"}},
                },
                {
                    "id": "KR-4",
                    "title": "Nothing matches",
                    "target": 10,
                    "baseline": 0,
                    "measure": {"kind": "count", "query": {"alpha": "label:nothing"}},
                },
            ],
        },
        {
            "id": "O2",
            "title": "Loop one",
            "parent": "O3",
            "key_results": [
                {"id": "KR-5", "title": "Manual", "target": 10, "baseline": 0, "current": 5}
            ],
        },
        {"id": "O3", "title": "Loop two", "parent": "O2"},
    ]
}
CAPACITY = {"intervals": [{"name": "2026-Q2", "teams": {"Team A": 10, "Team B": 0}}]}


class QueryingFake(FakeConnector):
    """A `FakeConnector` that answers saved queries: `label:<name>` matches the items with
    that label; `refuse` is refused as the tracker would refuse bad JQL; `raise=True` makes
    the whole batch fail."""

    def __init__(self, tracker: FakeTracker, *, raise_on_query: bool = False) -> None:
        super().__init__(tracker)
        self.batches: list[list[TrackerQuery]] = []
        self.raise_on_query = raise_on_query

    def run_queries(self, queries: Sequence[TrackerQuery]) -> dict[str, QueryAnswer | QueryRefused]:
        self.batches.append(list(queries))
        if self.raise_on_query:
            raise TimeoutError("the tracker did not answer in 30 s")
        answers: dict[str, QueryAnswer | QueryRefused] = {}
        for query in queries:
            if not query.text.startswith("label:"):
                answers[query.ident] = QueryRefused(f"Error in the JQL Query: {query.text!r}")
                continue
            label = query.text.removeprefix("label:")
            found = [i for i in self.tracker.items.values() if label in i.labels]
            matches = tuple(
                QueryMatch(i.key, i.status_category is StatusCategory.DONE, i.job_size)
                for i in found
            )
            answers[query.ident] = QueryAnswer(
                len(found),
                matches=matches if query.want == "items" else None,
                keys=tuple(i.key for i in found) if query.want == "keys" else None,
            )
        return answers


def item(key: str, type_: str, title: str, parent: str | None = None) -> WorkItem:
    epic = three_epics("alpha")["E1"]
    return dataclasses.replace(
        epic, key=key, id=key, type=type_, level=None, title=title, parent_key=parent, labels=()
    )


def portfolio_items() -> dict[str, WorkItem]:
    items = three_epics("alpha")
    # E1 precedes E2 (E2 waits for it), E3 precedes E1; E3 is an orphan (no Key Result).
    items["E1"] = dataclasses.replace(
        items["E1"], links=(Link("System.LinkTypes.Dependency", "outward", "E2"),)
    )
    items["E3"] = dataclasses.replace(
        items["E3"], links=(Link("System.LinkTypes.Dependency", "outward", "E1"),)
    )
    items["E2"] = dataclasses.replace(items["E2"], status_category=StatusCategory.TODO)
    extra = [
        item("O1", "Objective", "Shrink"),  # the file says "Grow": a conflict
        item("OBJ-9", "Objective", "Tracker only objective"),
        item("KR-9", "Key Result", "Tracker only key result", parent="OBJ-9"),
    ]
    items.update({i.key: i for i in extra})
    return items


def write_config(folder: Path, okrs: dict[str, Any] = OKRS, **top: Any) -> Config:
    path = fake_config(folder, ("alpha",)).source
    assert path is not None
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["connections"][0]["okr"] = {
        "objective_types": ["Objective"],
        "item_types": ["Key Result"],
    }
    data.update(top)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    (folder / "okrs.yaml").write_text(yaml.safe_dump(okrs), encoding="utf-8")
    return load_config(path)


def run(
    config: Config, store: Store, tracker: FakeTracker, clock: Clock, make: Any = QueryingFake
) -> tuple[CycleOutcome, list[Any]]:
    made: list[Any] = []

    def factory(settings: object) -> Connector:
        connector = make(tracker)
        made.append(connector)
        return connector

    deps = CycleDeps(store, connector_factory=factory, clock=clock)
    return run_cycle(config, deps, mode=WriteMode.PLAN, send_email=False), made


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return write_config(tmp_path, capacity=CAPACITY)


@pytest.fixture
def store(config: Config) -> Any:
    opened = Store.from_settings(config.store)
    yield opened
    opened.close()


def section(outcome: CycleOutcome) -> PortfolioSection:
    assert outcome.result is not None
    portfolio = outcome.result.portfolio
    assert portfolio is not None, outcome.result.errors
    return portfolio


def key_results(portfolio: PortfolioSection) -> dict[str, KeyResultProgress]:
    found = {kr.id: kr for o in portfolio.objectives for kr in o.key_results}
    found.update({kr.id: kr for kr in portfolio.orphan_key_results})
    return found


def test_key_results_are_measured_by_one_query_batch_per_connection(
    config: Config, store: Store, clock: Clock
) -> None:
    outcome, made = run(config, store, FakeTracker("alpha", portfolio_items(), clock), clock)
    portfolio = section(outcome)
    assert isinstance(made[0], QueryingConnector)
    batches = made[0].batches  # type: ignore[attr-defined]
    assert len(batches) == 1
    asked = {q.ident: (q.want, q.field) for q in batches[0]}
    assert asked == {
        "KR-1": ("count", None),
        "KR-2": ("keys", None),  # done-ness from the pulled items
        "KR-3": ("items", "Size"),  # the fake cannot say where the store keeps "Size"
        "KR-4": ("count", None),
    }
    assert [(q.connection, q.queries, q.failed) for q in portfolio.queries] == [("alpha", 4, 1)]
    krs = key_results(portfolio)
    assert (krs["KR-1"].current, krs["KR-1"].progress_pct, krs["KR-1"].problems) == (1, 20, [])
    assert krs["KR-1"].queries == {"alpha": "label:kr-KR-1"}
    # KR-2's one item (E2) is to do: 0% done.
    assert (krs["KR-2"].current, krs["KR-2"].progress_pct) == (0, 0)
    assert krs["KR-3"].current is None
    assert krs["KR-3"].problems == [
        "the sum(Size) query failed: alpha refused it: Error in the JQL Query: 'refuse'"
    ]
    assert (krs["KR-4"].current, krs["KR-4"].progress_pct) == (0, 0)
    assert krs["KR-4"].notes == ["the count query matched no items: taken as 0"]
    assert (krs["KR-5"].measure, krs["KR-5"].current, krs["KR-5"].progress_pct) == (
        "manual",
        5,
        50,
    )


def test_objective_rollup_weights_and_problems(config: Config, store: Store, clock: Clock) -> None:
    outcome, _ = run(config, store, FakeTracker("alpha", portfolio_items(), clock), clock)
    portfolio = section(outcome)
    o1 = next(o for o in portfolio.objectives if o.id == "O1")
    assert [kr.weight for kr in o1.key_results] == [3, 1, None, None]
    # Weighted on only some parts: every part counts equally, with a note naming the others.
    assert o1.notes == ["weights are missing for KR-3, KR-4: every part counts equally"]
    assert [kr.share for kr in o1.key_results] == [0.25] * 4
    # Measured: KR-1 20%, KR-2 0%, KR-4 0%; KR-3 unmeasured lowers confidence, not progress.
    assert o1.progress_pct == pytest.approx(6.7)
    assert o1.confidence == pytest.approx(0.25 + 0.25 + 0 + 0.125)
    assert "key result KR-3: the sum(Size) query failed" in " ".join(o1.problems)
    assert o1.aligned_items == 2  # E1 (KR-1) and E2 (KR-2)
    assert o1.aligned_job_size == 11


def test_cycle_conflict_and_tracker_objectives_are_rows_not_crashes(
    config: Config, store: Store, clock: Clock
) -> None:
    outcome, _ = run(config, store, FakeTracker("alpha", portfolio_items(), clock), clock)
    assert outcome.result is not None
    assert outcome.result.status == "ok", outcome.result.errors
    portfolio = section(outcome)
    cycle = [p for p in portfolio.tree_problems if p.chain]
    assert [p.chain for p in cycle] == [["O2", "O3", "O2"]]
    top = [o.id for o in portfolio.objectives if o.depth == 0]
    assert top == ["O1", "O2", "O3", "OBJ-9"]
    assert [
        (c.id, c.field, c.used_value, c.other_value, c.other_source) for c in portfolio.conflicts
    ] == [("O1", "title", "Grow", "Shrink", "tracker:alpha/O1")]
    obj9 = next(o for o in portfolio.objectives if o.id == "OBJ-9")
    assert [kr.id for kr in obj9.key_results] == ["KR-9"]
    assert obj9.key_results[0].sources == ["tracker:alpha/KR-9"]
    assert obj9.key_results[0].problems == [
        "no current value: state it, or give the key result a query"
    ]
    o3 = next(o for o in portfolio.objectives if o.id == "O3")
    assert o3.problems == ["has no key results and no child objectives: nothing to measure"]


def test_capacity_cut_line_and_zero_capacity_team(
    config: Config, store: Store, clock: Clock
) -> None:
    outcome, _ = run(config, store, FakeTracker("alpha", portfolio_items(), clock), clock)
    capacity = section(outcome).capacity
    assert capacity is not None
    team_a = next(t for t in capacity.teams if t.team == "Team A")
    (cut,) = team_a.cuts
    # WSJF order: E2 (size 3), E1 (8), E3 (13); 10 points take E2, E1 does not fit.
    assert (cut.planned_count, cut.planned_points, cut.remaining_points) == (1, 3, 7)
    assert cut.last_above is not None and cut.last_above.key == "E2"
    assert cut.first_below is not None and cut.first_below.key == "E1"
    assert [i.key for i in cut.high_wsjf_below] == ["E1", "E3"]
    assert [i.key for i in cut.in_progress_below] == ["E3", "E1"]  # least WSJF first
    team_b = next(t for t in capacity.teams if t.team == "Team B")
    assert team_b.cuts[0].planned_count == 0
    assert team_b.cuts[0].problems == ["team 'Team B' has zero capacity in 2026-Q2: nothing fits"]
    assert capacity.problems == []


def test_dependency_risk_names_the_chain(config: Config, store: Store, clock: Clock) -> None:
    outcome, _ = run(config, store, FakeTracker("alpha", portfolio_items(), clock), clock)
    deps = section(outcome).dependencies
    assert deps.links == 2
    chains = {f.item.key: f.chain for f in deps.rank_conflicts}
    # E2 (rank 1) waits for E1 (rank 2), which waits for E3 (rank 3).
    assert chains == {"E2": ["E2", "E1", "E3"], "E1": ["E1", "E3"]}
    blocked = {f.item.key: f.blocker.key for f in deps.orphan_blocks}
    assert blocked == {"E1": "E3", "E2": "E3"}


def test_a_failing_batch_and_a_connector_without_queries_fail_per_key_result(
    config: Config, store: Store, clock: Clock
) -> None:
    tracker = FakeTracker("alpha", portfolio_items(), clock)

    def raising(t: FakeTracker) -> QueryingFake:
        return QueryingFake(t, raise_on_query=True)

    outcome, _ = run(config, store, tracker, clock, make=raising)
    krs = key_results(section(outcome))
    reason = "the queries of alpha failed: TimeoutError: the tracker did not answer in 30 s"
    assert krs["KR-1"].problems == [f"the count query failed: {reason}"]
    assert section(outcome).queries[0].error == reason
    assert outcome.result is not None and outcome.result.status == "ok"

    clock.advance(60)
    outcome, _ = run(config, store, tracker, clock, make=FakeConnector)
    krs = key_results(section(outcome))
    assert krs["KR-2"].problems == [
        "the share_done query failed: the alpha connector cannot run queries"
    ]
    assert krs["KR-5"].progress_pct == 50  # manual measures need no query


def test_the_result_document_carries_the_portfolio_section(
    config: Config, store: Store, clock: Clock
) -> None:
    outcome, _ = run(config, store, FakeTracker("alpha", portfolio_items(), clock), clock)
    assert outcome.result is not None
    document = json.loads(outcome.result.model_dump_json())
    portfolio = document["portfolio"]
    assert [o["id"] for o in portfolio["objectives"]] == ["O1", "O2", "O3", "OBJ-9"]
    kr1 = portfolio["objectives"][0]["key_results"][0]
    assert kr1["measure"] == "count" and kr1["current"] == 1 and kr1["progress_pct"] == 20
    assert portfolio["capacity"]["teams"][0]["cuts"][0]["interval"] == "2026-Q2"
    assert portfolio["dependencies"]["rank_conflict_count"] == 2
    # The OKR section shows the measured values too (a failed query: unknown, not stale).
    alignment = {kr["id"]: kr for kr in document["alignment"]["objectives"][0]["key_results"]}
    assert (alignment["KR-1"]["current"], alignment["KR-3"]["current"]) == (1, None)
    again = CycleResult.model_validate_json(outcome.result.model_dump_json())
    assert again.portfolio == outcome.result.portfolio
    stored = store.get_run(int(outcome.result.run_id))
    assert stored is not None


def test_without_capacity_there_are_no_cut_lines(tmp_path: Path, clock: Clock) -> None:
    config = write_config(tmp_path)
    opened = Store.from_settings(config.store)
    try:
        outcome, _ = run(config, opened, FakeTracker("alpha", portfolio_items(), clock), clock)
    finally:
        opened.close()
    assert section(outcome).capacity is None


def test_a_connection_whose_pull_failed_is_not_asked(
    config: Config, store: Store, clock: Clock
) -> None:
    def failing(tracker: FakeTracker) -> QueryingFake:
        connector = QueryingFake(tracker)
        connector.fail_pull_after = 0
        return connector

    tracker = FakeTracker("alpha", portfolio_items(), clock)
    outcome, made = run(config, store, tracker, clock, make=failing)
    assert made[0].batches == []
    portfolio = section(outcome)
    (query_run,) = portfolio.queries
    assert query_run.failed == 4 and query_run.error is not None
    assert query_run.error.startswith("alpha is not usable this run (")
    assert "the tracker went away mid-pull" in query_run.error
    assert key_results(portfolio)["KR-1"].current is None
