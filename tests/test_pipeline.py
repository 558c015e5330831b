"""The cycle's own logic over in-memory trackers (`tests.cycle_fixtures.FakeConnector`):
watermarks and overlap, deletion scans, failure isolation, plan vs apply, conflicts, stop
requests, resume after a crash, email failure, and the stored result."""

from __future__ import annotations

import dataclasses
import smtplib
from datetime import timedelta
from pathlib import Path

import pytest

from connectors.base import Connector
from spm_sync.cli.commands import report_command
from spm_sync.config.model import Config, WriteMode
from spm_sync.core.domain import ConnectionPlan, PlannedWrite, RankMove, StatusCategory, WriteField
from spm_sync.core.results import CycleResult
from spm_sync.pipeline.apply import write_batches
from spm_sync.pipeline.cycle import CycleDeps, CycleOutcome, run_cycle
from spm_sync.store import AuditStatus, RunStatus, Store
from tests.cycle_fixtures import Clock, FakeConnector, FakeTracker, fake_config, three_epics


def deps_for(
    store: Store, trackers: dict[str, FakeTracker], clock: Clock, **options: object
) -> CycleDeps:
    made: list[FakeConnector] = []

    def factory(settings: object) -> Connector:
        connector = FakeConnector(trackers[settings.name], **options)  # type: ignore[attr-defined,arg-type]
        made.append(connector)
        return connector  # type: ignore[return-value]

    deps = CycleDeps(store, connector_factory=factory, clock=clock)
    deps.made = made  # type: ignore[attr-defined]
    return deps


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def setup(tmp_path: Path, clock: Clock) -> tuple[Config, Store, dict[str, FakeTracker]]:
    config = fake_config(tmp_path, ("alpha", "beta"))
    trackers = {name: FakeTracker(name, three_epics(name), clock) for name in ("alpha", "beta")}
    store = Store.from_settings(config.store)
    yield config, store, trackers
    store.close()


def cycle(config: Config, deps: CycleDeps, mode: WriteMode = WriteMode.APPLY) -> CycleOutcome:
    return run_cycle(config, deps, mode=mode, send_email=False)


def test_first_run_writes_and_second_run_plans_nothing(setup, clock: Clock) -> None:
    config, store, trackers = setup
    first = cycle(config, deps_for(store, trackers, clock))

    assert first.exit_status == 0 and first.result is not None
    written = store.audit_rows(first.run_id, status=AuditStatus.WRITTEN)
    # Three scores per connection, E3 gets the orphan label, one item moves so E2 leads.
    alpha = [(r.write.item_key, r.write.field) for r in written if r.write.connection == "alpha"]
    assert sorted(key for key, field in alpha if field is WriteField.WSJF_SCORE) == [
        "E1",
        "E2",
        "E3",
    ]
    assert [key for key, field in alpha if field is WriteField.LABELS] == ["E3"]
    assert len([key for key, field in alpha if field is WriteField.RANK]) == 1
    order = sorted(trackers["alpha"].items.values(), key=lambda item: float(item.rank))
    assert [item.key for item in order] == ["E2", "E1", "E3"]
    assert trackers["alpha"].items["E2"].wsjf_score == 8.67  # (13 + 8 + 5) / 3
    assert trackers["alpha"].items["E3"].labels == ("no-okr",)
    assert first.result.headline.writes_applied == len(written) == 10

    clock.advance(60)
    second = cycle(config, deps_for(store, trackers, clock))
    assert second.result is not None
    assert second.result.headline.writes_planned == 0
    assert [c.sync for c in second.result.connections] == ["incremental", "incremental"]


def test_incremental_pull_starts_at_the_watermark_minus_the_overlap(setup, clock: Clock) -> None:
    config, store, trackers = setup
    cycle(config, deps_for(store, trackers, clock), WriteMode.PLAN)
    newest = max(item.updated for item in trackers["alpha"].items.values())
    assert store.get_sync_state("alpha").watermark == newest

    clock.advance(30)
    trackers["alpha"].edit("E3", title="Renamed")
    cycle(config, deps_for(store, trackers, clock), WriteMode.PLAN)

    assert trackers["alpha"].pulls == [None, newest - timedelta(minutes=10)]
    assert store.get_item("alpha", "E3").title == "Renamed"
    assert store.get_sync_state("alpha").watermark == trackers["alpha"].items["E3"].updated


def test_a_failing_connection_is_reported_and_keeps_its_watermark(setup, clock: Clock) -> None:
    config, store, trackers = setup
    cycle(config, deps_for(store, trackers, clock), WriteMode.PLAN)
    before = store.get_sync_state("beta")
    clock.advance(5)
    trackers["beta"].edit("E1", title="Changed")

    def factory(settings: object) -> Connector:
        name = settings.name  # type: ignore[attr-defined]
        fail = 1 if name == "beta" else None
        return FakeConnector(trackers[name], fail_pull_after=fail)  # type: ignore[return-value]

    outcome = cycle(config, CycleDeps(store, connector_factory=factory, clock=clock))

    assert outcome.exit_status == 1 and outcome.result is not None
    assert outcome.result.status == "partial"
    health = {c.name: c for c in outcome.result.connections}
    assert health["beta"].error == "the tracker went away mid-pull"
    assert health["alpha"].error is None
    assert store.get_sync_state("beta") == before  # the next run pulls the same window again
    assert store.get_run(outcome.run_id).status is RunStatus.PARTIAL
    # The failed connection gets no plan: its stored values are stale.
    assert {r.write.connection for r in store.audit_rows(outcome.run_id)} <= {"alpha"}


def test_plan_mode_writes_nothing_and_records_the_plan(setup, clock: Clock) -> None:
    config, store, trackers = setup
    outcome = cycle(config, deps_for(store, trackers, clock), WriteMode.PLAN)
    rows = store.audit_rows(outcome.run_id)
    assert rows and {row.status for row in rows} == {AuditStatus.PLANNED}
    assert trackers["alpha"].writes == [] and trackers["beta"].writes == []
    assert outcome.result is not None and outcome.result.mode == "plan"


def test_deleted_items_are_flagged_on_the_scan_cadence_and_leave_alignment(
    setup, clock: Clock
) -> None:
    config, store, trackers = setup
    cycle(config, deps_for(store, trackers, clock), WriteMode.PLAN)  # full sync: no scan call
    assert trackers["alpha"].scans == 0
    del trackers["alpha"].items["E3"]  # the orphan
    clock.advance(60)
    outcome = cycle(config, deps_for(store, trackers, clock), WriteMode.PLAN)
    assert trackers["alpha"].scans == 0  # not due yet (every 24 h)
    assert outcome.result is not None
    assert ("alpha", "E3") in {(o.connection, o.key) for o in outcome.result.alignment.orphans}

    clock.advance(24 * 60)
    outcome = cycle(config, deps_for(store, trackers, clock), WriteMode.PLAN)
    assert trackers["alpha"].scans == 1
    assert outcome.result is not None
    health = {c.name: c for c in outcome.result.connections}
    assert health["alpha"].deleted_detected == 1
    assert ("alpha", "E3") not in {(o.connection, o.key) for o in outcome.result.alignment.orphans}
    assert store.get_item("alpha", "E3") is not None  # kept, flagged
    assert store.count_items("alpha") == 2


def test_a_human_edit_between_plan_and_apply_becomes_a_conflict(setup, clock: Clock) -> None:
    config, store, trackers = setup

    def human(plan: ConnectionPlan) -> None:
        if plan.connection == "alpha" and any(w.item_key == "E1" for w in plan.writes):
            trackers["alpha"].edit("E1", title="Edited by a person")

    outcome = cycle(config, deps_for(store, trackers, clock, before_push=human))
    rows = {
        (r.write.connection, r.write.item_key, r.write.field): r
        for r in store.audit_rows(outcome.run_id)
    }
    conflict = rows[("alpha", "E1", WriteField.WSJF_SCORE)]
    assert conflict.status is AuditStatus.CONFLICT
    assert rows[("beta", "E1", WriteField.WSJF_SCORE)].status is AuditStatus.WRITTEN
    assert trackers["alpha"].items["E1"].wsjf_score is None
    alpha_e1 = [row for ref, row in rows.items() if ref[:2] == ("alpha", "E1")]
    assert {row.status for row in alpha_e1} == {AuditStatus.CONFLICT}
    assert outcome.result is not None
    assert outcome.result.headline.write_conflicts == len(alpha_e1)


def test_a_stop_request_ends_the_run_at_a_safe_point(setup, clock: Clock) -> None:
    config, store, trackers = setup
    deps = deps_for(store, trackers, clock)

    deps.stop.set("SIGTERM received")
    outcome = cycle(config, deps)
    assert outcome.stopped and "SIGTERM received" in outcome.stopped
    run = store.get_run(outcome.run_id)
    assert run.status is RunStatus.FAILED and "stopped on request" in run.error
    assert trackers["alpha"].writes == [] and store.unfinished_runs() == []
    assert store.get_sync_state("alpha") is None  # nothing pulled, nothing advanced


def test_a_run_left_running_by_a_crash_is_closed_by_the_next(setup, clock: Clock) -> None:
    config, store, trackers = setup
    crashed = store.start_run("apply", trigger="schedule")
    store.set_stage(crashed, "apply")
    outcome = cycle(config, deps_for(store, trackers, clock))
    run = store.get_run(crashed)
    assert run.status is RunStatus.FAILED
    assert run.error.startswith("interrupted during stage apply")
    assert f"run {outcome.run_id} pulled and planned again" in run.error
    assert store.unfinished_runs() == []


def test_an_email_failure_keeps_the_files_and_marks_the_result(setup, clock: Clock) -> None:
    config, store, trackers = setup
    config = config.model_copy(
        update={
            "report": config.report.model_copy(
                update={
                    "email": config.report.email.model_copy(
                        update={
                            "enabled": True,
                            "host": "127.0.0.1",
                            "port": 25,
                            "security": "none",
                            "sender": "a@example.com",
                            "to": ["b@example.com"],
                        }
                    )
                }
            )
        }
    )

    def refuse(*_: object) -> smtplib.SMTP:
        raise smtplib.SMTPAuthenticationError(535, b"5.7.8 nope")

    deps = deps_for(store, trackers, clock)
    deps.smtp_factory = refuse
    outcome = run_cycle(config, deps, mode=WriteMode.PLAN, send_email=True)
    assert outcome.result is not None and outcome.report is not None
    assert outcome.report.paths.html.exists() and outcome.report.paths.eml.exists()
    assert outcome.result.status == "partial"
    (problem,) = outcome.result.errors
    assert problem.startswith("email: not sent:") and "535" in problem
    stored = CycleResult.model_validate(store.get_run(outcome.run_id).result)
    assert stored.errors == outcome.result.errors
    assert store.get_run(outcome.run_id).status is RunStatus.PARTIAL


def test_the_stored_result_renders_again_with_its_audit(
    setup, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    config, store, trackers = setup
    first = cycle(config, deps_for(store, trackers, clock))
    clock.advance(60)
    second = cycle(config, deps_for(store, trackers, clock))
    assert second.result is not None and second.result.previous is not None
    assert second.result.previous.run_id == str(first.run_id)
    assert [p.run_id for p in second.result.trend] == [str(first.run_id), str(second.run_id)]

    assert report_command(config, run_id=first.run_id, send=False) == 0
    out = capsys.readouterr().out
    # A summary by default; the whole audit log only when asked for.
    assert f"Writes of run {first.run_id}" in out and "written" in out
    assert f"Audit log of run {first.run_id}" not in out
    assert report_command(config, run_id=first.run_id, send=False, full_audit=True) == 0
    assert f"Audit log of run {first.run_id}" in capsys.readouterr().out
    html = sorted((config.report.output_dir).glob(f"alignment-*-{first.run_id}.html"))
    assert html, "the report of the first run is written again"


def test_connectors_are_closed_after_the_cycle(setup, clock: Clock) -> None:
    config, store, trackers = setup
    deps = deps_for(store, trackers, clock)
    cycle(config, deps, WriteMode.PLAN)
    assert [c.closed for c in deps.made] == [True, True]  # type: ignore[attr-defined]


def _write(key: str, field: WriteField = WriteField.WSJF_SCORE) -> PlannedWrite:
    return PlannedWrite("c", key, field, None, 1.0, "r1")


def test_write_batches_keep_an_items_writes_and_its_move_together() -> None:
    writes = (*(_write(f"K{n}") for n in range(7)), _write("K1", WriteField.PRIORITY))
    move_a = RankMove(
        "c",
        ("K2", "K3"),
        "K0",
        None,
        (_write("K2", WriteField.RANK), _write("K3", WriteField.RANK)),
    )
    move_b = RankMove("c", ("K5",), "K3", None, (_write("K5", WriteField.RANK),))
    plan = ConnectionPlan("c", writes, (move_a, move_b))

    batches = write_batches(plan, size=4)

    flattened = [w for b in batches for w in (*b.writes, *(x for m in b.moves for x in m.writes))]
    assert sorted(map(repr, flattened)) == sorted(
        map(repr, (*writes, *move_a.writes, *move_b.writes))
    )
    for batch in batches:
        keys = {w.item_key for w in batch.writes} | {k for m in batch.moves for k in m.item_keys}
        for other in batches:
            if other is not batch:
                other_keys = {w.item_key for w in other.writes}
                other_keys |= {k for m in other.moves for k in m.item_keys}
                assert not keys & other_keys  # an item never spans two pushes
    moves = [m for b in batches for m in b.moves]
    assert moves == [move_a, move_b]
    assert all(len(b.writes) + sum(len(m.writes) for m in b.moves) <= 4 for b in batches)


def test_wip_lanes_count_a_teams_items_against_its_limits(tmp_path: Path, clock: Clock) -> None:
    limits = [
        {"team": "Team A", "status_category": "In Progress", "limit": 1},
        {"team": "team a", "status_category": "To Do", "limit": 5},
    ]
    config = fake_config(tmp_path, ("alpha",), wip_limits=limits)
    items = three_epics("alpha")
    items["E3"] = dataclasses.replace(items["E3"], job_size=-3.0, team="Portfolio\\Team A\\Web")
    tracker = FakeTracker("alpha", items, clock)
    with Store.from_settings(config.store) as store:
        outcome = cycle(config, deps_for(store, {"alpha": tracker}, clock), WriteMode.PLAN)
    assert outcome.result is not None
    (lane,) = outcome.result.wip
    assert lane.team == "Team A" and lane.connection == "alpha"
    assert lane.counts[StatusCategory.IN_PROGRESS] == 3  # "Team A" twice, and under a path
    assert lane.limits == {StatusCategory.IN_PROGRESS: 1, StatusCategory.TODO: 5}
    assert lane.breaches == [StatusCategory.IN_PROGRESS]
    orphan = next(o for o in outcome.result.alignment.orphans if o.key == "E3")
    assert orphan.job_size is None  # a negative size is not shown as a size
    e3 = next(row for row in outcome.result.wsjf if row.key == "E3")
    assert e3.wsjf is None and "job size is negative" in (e3.reason_unscored or "")
