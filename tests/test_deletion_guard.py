"""The mass-deletion guard: its rule, the store's `mark_missing` under it, and the cycle over
in-memory trackers (what is held back, reported and written; the tiny-project floor).
The same over HTTP against the sandboxes is `tests/test_deletion_guard_http.py`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.base import Connector
from reports.render import render_report
from reports.settings import ReportOptions
from spm_sync.config.model import Config, WriteMode
from spm_sync.core.results import CycleResult
from spm_sync.core.results_health import ConnectionHealth, DeletionCheck
from spm_sync.pipeline.cycle import CycleDeps, CycleOutcome, run_cycle
from spm_sync.pipeline.deletion_guard import DeletionGuard
from spm_sync.store import Store
from tests.cycle_fixtures import Clock, FakeConnector, FakeTracker, epic, fake_config, three_epics
from tests.test_store import make_item


@pytest.mark.parametrize(
    ("expected", "missing", "share", "allowed"),
    [
        (120, 0, 0.2, True),
        (120, 24, 0.2, True),  # exactly the limit
        (120, 25, 0.2, False),
        (120, 120, 0.2, False),  # the empty answer
        (120, 120, 1.0, True),  # accepted on purpose
        (120, 2, 0.0, True),  # a few deletions always go ahead...
        (120, 4, 0.0, False),
        (3, 1, 0.2, True),  # ...so a tiny project can lose an item
        (3, 3, 0.2, False),  # ...but never all of them
        (1, 1, 0.99, False),
        (1, 1, 1.0, True),
    ],
)
def test_the_guard_allows_up_to_the_share_and_a_few_but_never_everything(
    expected: int, missing: int, share: float, allowed: bool
) -> None:
    assert DeletionGuard(share).allows(expected, missing) is allowed


def test_mark_missing_holds_back_when_refused_and_still_restores(store: Store) -> None:
    first = store.start_run("plan")
    store.upsert_items([make_item(f"PAY-{n}") for n in range(1, 11)], first)
    store.mark_missing("jira", {f"PAY-{n}" for n in range(1, 10)}, first)  # PAY-10 gone
    run = store.start_run("plan")
    store.upsert_items([make_item("PAY-11")], run)  # new in this run: not "expected"
    asked: list[tuple[int, int]] = []

    def refuse(expected: int, missing: int) -> bool:
        asked.append((expected, missing))
        return False

    scan = store.mark_missing("jira", {"PAY-1", "PAY-10", "PAY-11"}, run, may_delete=refuse)
    assert asked == [(9, 8)]  # PAY-2..9 missing of the 9 stored before
    assert (scan.expected, scan.answered, scan.missing) == (9, 3, 8)
    assert scan.held_back and scan.marked_deleted == 0 and scan.restored == 1  # PAY-10 back
    assert store.count_items("jira") == 11

    allowed = store.mark_missing("jira", {"PAY-1"}, run, may_delete=lambda e, m: True)
    assert not allowed.held_back and allowed.marked_deleted == 10
    assert store.count_items("jira") == 1


# -- the cycle over in-memory trackers --------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock()


def tracker_with(name: str, count: int, clock: Clock) -> FakeTracker:
    items = {
        f"E{n}": epic(name, f"E{n}", bv=n % 13 + 1, tc=3, rr=2, size=5, rank=1000.0 * n)
        for n in range(1, count + 1)
    }
    return FakeTracker(name, items, clock)


def cycle(
    config: Config, store: Store, trackers: dict[str, FakeTracker], clock: Clock
) -> CycleOutcome:
    def factory(settings: object) -> Connector:
        return FakeConnector(trackers[settings.name])  # type: ignore[attr-defined,return-value]

    deps = CycleDeps(store, connector_factory=factory, clock=clock)
    return run_cycle(config, deps, mode=WriteMode.APPLY, send_email=False)


def _result(outcome: CycleOutcome) -> CycleResult:
    assert outcome.result is not None
    return outcome.result


def test_an_empty_scan_is_held_back_reported_and_not_written(tmp_path: Path, clock: Clock) -> None:
    config = fake_config(tmp_path, ("alpha", "beta"))
    trackers = {"alpha": tracker_with("alpha", 20, clock), "beta": tracker_with("beta", 20, clock)}
    with Store.from_settings(config.store) as store:
        assert _result(cycle(config, store, trackers, clock)).status == "ok"
        for tracker in trackers.values():  # a human edit each: a score to write
            tracker.edit("E1", business_value=40)
        written = {name: len(tracker.writes) for name, tracker in trackers.items()}
        trackers["alpha"].items.clear()  # alpha answers nothing
        clock.advance(25 * 60)  # the deletion scan is due

        outcome = cycle(config, store, trackers, clock)
        result = _result(outcome)
        assert result.status == "partial" and outcome.exit_status == 1
        assert store.count_items("alpha") == 20
        assert len(trackers["alpha"].writes) == written["alpha"]  # no write-back to alpha
        assert len(trackers["beta"].writes) > written["beta"]  # beta goes on
        assert {o.connection for o in result.alignment.orphans} == {"alpha", "beta"}
        health = {c.name: c for c in result.connections}
        assert health["alpha"].deletions == DeletionCheck(
            expected=20, fetched=0, missing=20, max_share=0.2, applied=False
        )
        assert health["beta"].deletions is not None and health["beta"].deletions.applied
        assert result.problems == [
            "alpha: deletions held back: the tracker answered 0 of 20 stored items (100% would "
            "be deleted, limit 20%); nothing was marked deleted or written back. Check the "
            "scope and permissions; to accept, raise max_deletion_share (1 = any) for one run"
        ]
        state = store.get_sync_state("alpha")
        assert state is not None and state.last_deletion_scan != clock()  # scanned again next
        record = store.get_run(outcome.run_id)  # type: ignore[arg-type]
        assert record is not None and "deletions held back" in (record.error or "")
        again = CycleResult.model_validate(json.loads(json.dumps(record.result)))
        assert again.problems == result.problems  # a stored run re-renders the same problem


def test_a_single_held_back_connection_makes_the_run_partial_not_failed(
    tmp_path: Path, clock: Clock
) -> None:
    config = fake_config(tmp_path)
    trackers = {"alpha": FakeTracker("alpha", three_epics("alpha"), clock)}
    with Store.from_settings(config.store) as store:
        cycle(config, store, trackers, clock)
        del trackers["alpha"].items["E3"]  # 1 of 3: ordinary churn, applied
        clock.advance(25 * 60)
        result = _result(cycle(config, store, trackers, clock))
        assert result.status == "ok" and result.connections[0].deleted_detected == 1
        trackers["alpha"].items.clear()  # the last 2 of 2: never trusted
        clock.advance(25 * 60)
        result = _result(cycle(config, store, trackers, clock))
        assert result.status == "partial" and store.count_items("alpha") == 2


def test_the_health_section_shows_expected_fetched_and_held_back() -> None:
    held = DeletionCheck(expected=120, fetched=3, missing=117, max_share=0.2, applied=False)
    applied = DeletionCheck(expected=50, fetched=49, missing=1, max_share=0.2, applied=True)
    result = CycleResult.model_validate(
        {
            "run_id": "7",
            "started": "2026-03-02T06:00:00Z",
            "finished": "2026-03-02T06:01:00Z",
            "status": "partial",
            "mode": "apply",
            "connections": [
                ConnectionHealth(name="jira", kind="jira", deletions=held).model_dump(),
                ConnectionHealth(
                    name="ado", kind="azure_devops", deletions=applied, deleted_detected=1
                ).model_dump(),
            ],
        }
    )
    assert result.connections[0].deletions is not None
    assert result.connections[0].deletions.share == 117 / 120
    assert result.problems[0].startswith(
        "jira: deletions held back: the tracker answered 3 of 120 stored items (97.5% would be "
        "deleted, limit 20%)"
    )
    rendered = render_report(result, ReportOptions())
    text = rendered.text
    assert "jira (jira) DELETIONS HELD BACK" in text
    assert "deletion check: expected 120, fetched 3, 117 missing: held back" in text
    assert "deletion check: expected 50, fetched 49, 1 missing: applied" in text
    assert "DELETIONS HELD BACK" in rendered.html
    assert "expected 120 · fetched 3" in rendered.html
    assert "117 deletions held back" in rendered.html
