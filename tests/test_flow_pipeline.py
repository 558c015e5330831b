"""Status history in the cycle, over in-memory trackers: read after each pull and stored once,
the cursor saved only after a complete read, a failing history a warning (the items are still
reported), the stop signal honoured, and the document's flow section per value stream,
objective and Key Result, with the Portfolio Kanban and the forecasts. On SQLite and
PostgreSQL (the `store` fixture)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.base import Connector, ConnectorError
from spm_sync.config.model import Config, WriteMode, load_config
from spm_sync.core.domain import StatusCategory
from spm_sync.core.history import StatusChange
from spm_sync.core.results import CycleResult
from spm_sync.core.results_flow import FlowSection, GroupFlow
from spm_sync.pipeline.cycle import CycleDeps, CycleOutcome, run_cycle
from spm_sync.pipeline.stopping import StopSignal
from spm_sync.store import Store
from tests.cycle_fixtures import START, Clock, FakeConnector, FakeTracker, fake_config, three_epics

DAY = timedelta(days=1)
TODO, DOING, DONE = StatusCategory.TODO, StatusCategory.IN_PROGRESS, StatusCategory.DONE
OKRS = {
    "objectives": [
        {
            "id": "O1",
            "title": "Grow",
            "target_date": (START + 365 * DAY).date().isoformat(),
            "key_results": [
                {"id": "KR-1", "title": "Double sign-ups"},
                {"id": "KR-2", "title": "Halve churn"},
            ],
        }
    ]
}


def histories(connection: str) -> dict[str, list[StatusChange]]:
    """E1: finished 15 days after it started; E2: in progress for 10 days; E3: no history."""

    def change(key: str, days_ago: float, before: str | None, after: str, category: Any) -> Any:
        return StatusChange((connection, key), START - days_ago * DAY, before, after, category)

    return {
        "E1": [
            change("E1", 20, "New", "Active", DOING),
            change("E1", 5, "Active", "Closed", DONE),
        ],
        "E2": [change("E2", 10, "New", "Active", DOING)],
    }


class HistoryConnector(FakeConnector):
    """A `FakeConnector` with a status history: a per-item changelog read for the keys the
    pull delivered, and a cursor counting complete reads. `fail_after`: a `ConnectorError`
    after that many changes; `on_change`: called with each change before it is yielded."""

    def __init__(
        self,
        tracker: FakeTracker,
        changes: dict[str, list[StatusChange]],
        calls: list[tuple[list[str], str | None]],
        *,
        fail_after: int | None = None,
        on_change: Any = None,
    ) -> None:
        super().__init__(tracker)
        self.changes = changes
        self.calls = calls
        self.fail_after = fail_after
        self.on_change = on_change
        self._cursor: str | None = None

    def pull_history(
        self, changed_keys: Sequence[str], cursor: str | None
    ) -> Iterator[StatusChange]:
        self.calls.append((list(changed_keys), cursor))
        given = 0
        for key in changed_keys:
            self.stats.count("GET /items/{id}/history")
            for change in self.changes.get(key, ()):
                if self.fail_after is not None and given >= self.fail_after:
                    raise ConnectorError(f"{self.name}: history answered 500")
                given += 1
                if self.on_change is not None:
                    self.on_change(change)
                yield change
        self._cursor = f"read-{len(self.calls)}"

    @property
    def history_cursor(self) -> str | None:
        return self._cursor


FLOW = {
    "value_streams": {"by": "area_path"},
    "wip_limits": {"per_stage": {"implementing": 1}},
    "window_days": 28,
    "forecast": {"trials": 500, "seed": 11},
}


def flow_config(folder: Path, **flow: Any) -> Config:
    fake_config(folder, ("alpha",), flow={**FLOW, **flow})
    (folder / "okrs.yaml").write_text(yaml.safe_dump(OKRS), encoding="utf-8")
    return load_config(folder / "spm-sync.yaml")


def tracker(clock: Clock) -> FakeTracker:
    items = three_epics("alpha")
    items["E1"] = dataclasses.replace(
        items["E1"],
        labels=("kr-KR-1", "kr-KR-2"),
        status="Closed",
        status_category=DONE,
        created=START - 30 * DAY,
        updated=START - 5 * DAY,
    )
    items["E2"] = dataclasses.replace(items["E2"], created=START - 12 * DAY)
    items["E3"] = dataclasses.replace(
        items["E3"], created=START - 40 * DAY, updated=START - 39 * DAY
    )
    return FakeTracker("alpha", items, clock)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def run(
    config: Config,
    store: Store,
    fake: FakeTracker,
    clock: Clock,
    calls: list[tuple[list[str], str | None]],
    stop: StopSignal | None = None,
    **options: Any,
) -> CycleOutcome:
    def factory(settings: object) -> Connector:
        return HistoryConnector(fake, histories("alpha"), calls, **options)  # type: ignore[return-value]

    deps = CycleDeps(store, connector_factory=factory, clock=clock)
    if stop is not None:
        deps.stop = stop
    return run_cycle(config, deps, mode=WriteMode.PLAN, send_email=False)


def sync_problems(result: CycleResult) -> list[str]:
    """The run's problems but the report's own (rendering is tested with the report)."""
    return [line for line in result.problems if not line.startswith("report:")]


def group(flow: FlowSection, kind: str, group_id: str) -> GroupFlow:
    return next(g for g in flow.groups if g.kind == kind and g.id == group_id)


def test_history_is_stored_once_and_the_cursor_moves_after_each_complete_read(
    tmp_path: Path, store: Store, clock: Clock
) -> None:
    config, fake = flow_config(tmp_path), tracker(clock)
    calls: list[tuple[list[str], str | None]] = []
    first = run(config, store, fake, clock, calls)
    assert first.result is not None and not sync_problems(first.result)
    assert calls == [(["E1", "E2", "E3"], None)]  # a full sync: every key, from the start
    assert store.count_status_changes("alpha") == 3
    assert store.history_cursor("alpha") == "read-1"
    health = first.result.connections[0]
    assert health.requests_by_endpoint["GET /items/{id}/history"] == 3
    assert first.result.flow is not None
    assert [h.model_dump() for h in first.result.flow.history] == [
        {"connection": "alpha", "changes_read": 3, "changes_stored": 3, "error": None}
    ]

    clock.advance(60)
    calls.clear()  # E2 changed last: the overlap of the next pull brings it again
    second = run(config, store, fake, clock, calls)
    assert calls == [(["E2"], "read-1")]
    assert store.count_status_changes("alpha") == 3  # E2's changelog again: nothing new
    assert store.history_cursor("alpha") == "read-1"  # the connector's own count restarted
    assert second.result is not None and second.result.flow is not None
    assert second.result.flow.history[0].changes_stored == 0


def test_flow_metrics_per_value_stream_objective_and_key_result(
    tmp_path: Path, store: Store, clock: Clock
) -> None:
    outcome = run(flow_config(tmp_path), store, tracker(clock), clock, [])
    assert outcome.result is not None
    stored = CycleResult.model_validate_json(outcome.result.model_dump_json())
    flow = stored.flow
    assert flow is not None and flow.items == 3 and flow.window_days == 28
    assert flow.levels == ["epic", "feature"] and flow.items_with_history == 2
    stream = group(flow, "value_stream", "Team A")
    assert (stream.items, stream.done, stream.load) == (3, 1, 2)
    assert stream.flow_time is not None and stream.flow_time.p50 == 15.0
    assert sum(week.count for week in stream.weekly_throughput) == 1
    assert len(stream.weekly_throughput) == 4
    assert stream.distribution == {"feature": 1}
    assert [a.key for a in stream.ageing] == ["E3", "E2"]  # oldest first (E3: since creation)
    assert stream.ageing[1].title == "Epic E2" and stream.ageing[1].stage == "implementing"
    # E1 moves both Key Results: it counts in each, and once in their objective.
    objective = group(flow, "objective", "O1")
    assert (objective.items, objective.done, objective.load) == (2, 1, 1)
    kr1, kr2 = group(flow, "key_result", "KR-1"), group(flow, "key_result", "KR-2")
    assert (kr1.items, kr1.done, kr1.load) == (1, 1, 0)
    assert (kr2.items, kr2.done, kr2.load) == (2, 1, 1)
    assert kr2.objective_id == "O1"
    assert [g.kind for g in flow.groups] == [
        "value_stream",
        "objective",
        "key_result",
        "key_result",
    ]


def test_the_board_names_what_is_over_its_limit(tmp_path: Path, store: Store, clock: Clock) -> None:
    outcome = run(flow_config(tmp_path), store, tracker(clock), clock, [])
    assert outcome.result is not None and outcome.result.flow is not None
    kanban = outcome.result.flow.kanban
    assert kanban is not None
    assert [s.name for s in kanban.stages][-2:] == ["implementing", "done"]
    board = kanban.boards[0]
    assert board.value_stream == "Team A"
    implementing = next(c for c in board.columns if c.stage == "implementing")
    assert [card.key for card in implementing.cards] == ["E3", "E2"]  # E3's entry unknown
    assert implementing.cards[1].wsjf is not None and implementing.cards[1].beyond_limit
    assert kanban.stage_counts["implementing"] == 2 and kanban.stage_limits == {"implementing": 1}
    assert [item.key for item in kanban.over_limit_items] == ["E2"]
    assert [item.key for item in kanban.stop_starting] == ["E2"]
    assert kanban.over_limit[0].over_by == 1 and kanban.over_limit[0].value_stream is None


def test_forecasts_and_problems(tmp_path: Path, store: Store, clock: Clock) -> None:
    outcome = run(flow_config(tmp_path), store, tracker(clock), clock, [])
    assert outcome.result is not None and outcome.result.flow is not None
    flow = outcome.result.flow
    (forecast,) = flow.forecasts
    assert (forecast.objective_id, forecast.remaining, forecast.verdict) == ("O1", 1, "on_track")
    assert forecast.p85 is not None and forecast.target_date is not None
    assert forecast.p85 <= forecast.target_date and flow.objectives_at_risk == []
    assert [(p.key, p.reason) for p in flow.problems] == [
        ("E3", "no status history: started taken as created")
    ]
    assert flow.problem_count == 1


def test_an_objective_whose_forecast_misses_its_target_is_a_finding_not_a_failure(
    tmp_path: Path, store: Store, clock: Clock
) -> None:
    config = flow_config(tmp_path)
    okrs = dict(OKRS, objectives=[dict(OKRS["objectives"][0], target_date="2026-03-03")])
    (tmp_path / "okrs.yaml").write_text(yaml.safe_dump(okrs), encoding="utf-8")
    config = load_config(tmp_path / "spm-sync.yaml")
    outcome = run(config, store, tracker(clock), clock, [])
    assert outcome.result is not None and not sync_problems(outcome.result)
    assert outcome.result.flow is not None
    assert outcome.result.flow.objectives_at_risk == ["O1"]
    assert "after the target 2026-03-03" in outcome.result.flow.forecasts[0].reason


def test_a_failing_history_is_a_warning_and_the_items_are_still_reported(
    tmp_path: Path, store: Store, clock: Clock
) -> None:
    config, fake = flow_config(tmp_path), tracker(clock)
    calls: list[tuple[list[str], str | None]] = []
    outcome = run(config, store, fake, clock, calls, fail_after=1)
    result = outcome.result
    assert result is not None and not sync_problems(result)
    health = result.connections[0]
    assert health.items_pulled == 3 and health.error is None
    assert any(
        "status history not read completely: alpha: history answered 500" not in w
        and "status history not read completely: history answered 500" in w
        for w in health.warnings
    ), health.warnings
    assert result.alignment.in_scope_count == 2  # E1 is done
    assert [o.key for o in result.alignment.orphans] == ["E3"] and result.wsjf
    assert store.history_cursor("alpha") is None  # read again next time
    assert store.history_pending_since("alpha") is not None
    assert result.flow is not None
    assert result.flow.history[0].error == "alpha: history answered 500"
    # No history stored for any item yet: each one says so (done E1 also that its finish
    # time is unknown).
    assert {p.key for p in result.flow.problems} == {"E1", "E2", "E3"}
    assert result.flow.problem_count == 4

    clock.advance(60)
    calls.clear()
    again = run(config, store, fake, clock, calls)
    # An incremental pull brings E2 alone, but the history of every item is still pending.
    assert calls == [(["E1", "E2", "E3"], None)]
    assert store.count_status_changes("alpha") == 3 and store.history_cursor("alpha")
    assert store.history_pending_since("alpha") is None
    assert again.result is not None and again.result.flow is not None


def test_a_stop_request_while_reading_history_keeps_the_cursor(
    tmp_path: Path, store: Store, clock: Clock
) -> None:
    config, fake = flow_config(tmp_path), tracker(clock)
    stop = StopSignal()
    outcome = run(config, store, fake, clock, [], stop, on_change=lambda _: stop.set("test"))
    assert outcome.stopped is not None and "status history of alpha" in outcome.stopped
    assert store.history_cursor("alpha") is None
    assert store.count_status_changes("alpha") == 3  # the batch read was stored


def test_flow_can_be_switched_off(tmp_path: Path, store: Store, clock: Clock) -> None:
    outcome = run(flow_config(tmp_path, enabled=False), store, tracker(clock), clock, [])
    assert outcome.result is not None and outcome.result.flow is None
    assert store.count_status_changes() == 3  # history is still kept for when it is on
