"""`spm-sync undo`: restoring what a run wrote, guarded against newer edits, as a new run."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.registry import default_connector_factory
from spm_sync.cli.commands import run_undo, undo_command
from spm_sync.config.model import WriteMode
from spm_sync.core.domain import PlannedWrite, WriteField
from spm_sync.pipeline.cycle import CycleDeps, run_cycle
from spm_sync.pipeline.undo import plan_undo, restore_order
from spm_sync.store import AuditRow, AuditStatus, Store
from tests.cycle_fixtures import (
    Clock,
    FakeConnector,
    FakeTracker,
    epic,
    fake_config,
    sandbox_setup,
    three_epics,
)

WHEN = datetime(2026, 3, 2, tzinfo=UTC)


def test_moved_items_go_back_after_their_old_predecessor() -> None:
    old = ["A", "B", "C", "D", "E"]
    # The run moved D and E to the top; a person then swapped A and C, which stays so.
    current = ["D", "E", "C", "B", "A"]
    assert restore_order(current, old, {"D", "E"}) == ["C", "D", "E", "B", "A"]
    assert restore_order(["B", "A", "C"], ["A", "B", "C"], {"B"}) == ["A", "B", "C"]
    assert restore_order(["C", "A", "B"], ["A", "B", "C"], {"C"}) == ["A", "B", "C"]
    # An item gone since is left out.
    assert restore_order(["C", "A"], ["A", "B", "C"], {"B", "C"}) == ["A", "C"]


def row(field: WriteField, old: object, new: object, key: str = "E1") -> AuditRow:
    write = PlannedWrite("alpha", key, field, old, new, "1")  # type: ignore[arg-type]
    return AuditRow(1, write, AuditStatus.WRITTEN, None, "2", WHEN, WHEN)


def test_only_values_that_still_stand_are_restored() -> None:
    items = {
        "E1": epic("alpha", "E1", bv=1, tc=1, rr=1, size=1, labels=("no-okr", "team-x")),
        "E2": epic("alpha", "E2", bv=1, tc=1, rr=1, size=1),
    }
    items["E1"] = items["E1"].__class__(**{**_fields(items["E1"]), "wsjf_score": 4.0})
    items["E2"] = items["E2"].__class__(**{**_fields(items["E2"]), "wsjf_score": 9.0})
    rows = [
        row(WriteField.WSJF_SCORE, None, 4.0, "E1"),  # still 4.0: restored to empty
        row(WriteField.WSJF_SCORE, 2.0, 3.0, "E2"),  # now 9.0: someone changed it
        row(WriteField.LABELS, ("team-x",), ("no-okr", "team-x"), "E1"),
        row(WriteField.WSJF_SCORE, None, 1.0, "E9"),  # gone from the scope
    ]
    undo = plan_undo(rows, items, [], "numeric", 1)

    restores = {(w.item_key, w.field): w for w in undo.plan.writes}
    score = restores[("E1", WriteField.WSJF_SCORE)]
    assert (score.old, score.new, score.expected_revision) == (4.0, None, "1")
    labels = restores[("E1", WriteField.LABELS)]
    assert labels.new == ("team-x",)
    conflicts = {(r.write.item_key, r.write.field): r.error for r in undo.conflicts}
    assert conflicts == {
        ("E2", WriteField.WSJF_SCORE): "changed since run 1 wrote 3.0: now 9.0",
        ("E9", WriteField.WSJF_SCORE): "the item is no longer in the tracker's scope",
    }


def _fields(item: object) -> dict[str, object]:
    return {name: getattr(item, name) for name in item.__slots__}  # type: ignore[attr-defined]


def test_undo_restores_applied_values_and_reports_newer_edits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = Clock()
    config = fake_config(tmp_path)
    tracker = FakeTracker("alpha", three_epics("alpha"), clock)
    original = dict(tracker.items)
    with Store.from_settings(config.store) as store:
        deps = CycleDeps(store, connector_factory=lambda s: FakeConnector(tracker), clock=clock)  # type: ignore[arg-type,return-value]
        applied = run_cycle(config, deps, mode=WriteMode.APPLY, send_email=False)
        assert applied.run_id is not None
        clock.advance(5)
        tracker.edit("E1", wsjf_score=99.0)  # a person overrides one score

        dry = run_undo(config, deps, run_id=applied.run_id, mode=WriteMode.PLAN)
        assert dry.result is not None and dry.result.mode == "plan"
        assert {r.status for r in store.audit_rows(dry.run_id)} == {
            AuditStatus.PLANNED,
            AuditStatus.CONFLICT,
        }
        assert tracker.items["E2"].wsjf_score == 8.67  # nothing written by a dry run

        undone = run_undo(config, deps, run_id=applied.run_id, mode=WriteMode.APPLY)
        rows = {(r.write.item_key, r.write.field): r for r in store.audit_rows(undone.run_id)}
        assert rows[("E1", WriteField.WSJF_SCORE)].status is AuditStatus.CONFLICT
        assert store.get_run(undone.run_id).trigger == "undo"
    assert tracker.items["E1"].wsjf_score == 99.0
    for key in ("E2", "E3"):
        assert tracker.items[key].wsjf_score is None
        assert tracker.items[key].labels == original[key].labels
    order = sorted(tracker.items.values(), key=lambda item: float(item.rank))
    assert [item.key for item in order] == ["E1", "E2", "E3"]  # the order before the run

    assert undo_command(config, run_id=dry.run_id, mode=None) == 0
    assert f"run {dry.run_id} wrote nothing: nothing to undo" in capsys.readouterr().out
    assert undo_command(config, run_id=999, mode=None) == 2
    assert "the store has no run 999" in capsys.readouterr().err  # a failure: on stderr


@pytest.mark.integration
def test_undo_puts_jira_ranks_and_values_back(tmp_path: Path) -> None:
    with sandbox_setup(tmp_path, size=300) as env:
        config = env.config()
        order_before = env.jira.rank_order()
        fields = [env.jira.field_id(name) for name in ("WSJF Score", "Cost of Delay")]
        fields += ["labels", "priority"]

        def values() -> dict[str, list[object]]:
            return {
                seed.key: [env.jira.issue(seed.key)["fields"].get(f) for f in fields]
                for seed in env.portfolio.jira
            }

        before = values()
        with Store.from_settings(config.store) as store:
            deps = CycleDeps(
                store, connector_factory=default_connector_factory(discovery_cache_dir=None)
            )
            applied = run_cycle(config, deps, mode=WriteMode.APPLY, send_email=False)
            assert applied.result is not None
            scope = [r.key for r in applied.result.wsjf if r.connection == "jira"]
            assert env.jira.rank_order(scope) != [k for k in order_before if k in set(scope)]
            undone = run_undo(config, deps, run_id=applied.run_id, mode=WriteMode.APPLY)
            assert undone.result is not None and undone.result.status == "ok"
            counts = undone.result.writes.counts
            assert counts["written"] == applied.result.writes.counts["written"]
        assert env.jira.rank_order(scope) == [k for k in order_before if k in set(scope)]
        assert values() == before
