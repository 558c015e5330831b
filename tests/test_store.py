"""The store on SQLite and PostgreSQL: migrations, upserts, JSON and time round trips, runs,
the audit log, and advisory locks."""

from __future__ import annotations

import dataclasses
import threading
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, event, inspect

from spm_sync.config.sections import StoreSettings
from spm_sync.core.domain import (
    ConnectionPlan,
    Level,
    Link,
    PlannedWrite,
    RankMove,
    StatusCategory,
    WorkItem,
    WriteField,
    WriteResult,
    WriteStatus,
)
from spm_sync.store import (
    AlignmentRecord,
    AuditStatus,
    OrphanRecord,
    RunStatus,
    ScoreRecord,
    StageStatus,
    Store,
    SyncState,
    SyncStats,
    UpsertCounts,
)
from spm_sync.store.engine import normalize_url
from spm_sync.store.tables import metadata

T0 = datetime(2025, 3, 10, 8, 30, 15, 123456, tzinfo=UTC)
TABLES = {
    "alembic_version",
    "alignments",
    "orphans",
    "runs",
    "schedule_slots",
    "scores",
    "stage_progress",
    "sync_state",
    "sync_stats",
    "work_items",
    "writes",
}


def make_item(key: str, connection: str = "jira", **changes: object) -> WorkItem:
    item = WorkItem(
        connection=connection,
        key=key,
        id=key.rsplit("-", 1)[-1],
        type="Epic",
        level=Level.EPIC,
        title=f"Title of {key}",
        status="In Progress",
        status_category=StatusCategory.IN_PROGRESS,
        updated=T0,
        revision="2025-03-10T08:30:15.123+0000",
    )
    return dataclasses.replace(item, **changes)  # type: ignore[arg-type]


def schema_differences(url: str) -> list[object]:
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as connection:
            return list(compare_metadata(MigrationContext.configure(connection), metadata))
    finally:
        engine.dispose()


def test_migration_creates_the_schema_once_and_matches_the_models(store_url: str) -> None:
    first = Store(store_url)
    first.upsert_items([make_item("PAY-1")])
    first.close()
    engine = create_engine(normalize_url(store_url))
    assert set(inspect(engine).get_table_names()) >= TABLES
    engine.dispose()

    second = Store(store_url)  # upgrade again: nothing to do, nothing lost
    statements: list[str] = []
    event.listen(second._engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    second.migrate()
    assert statements  # the version was read ...
    assert not [s for s in statements if s.lstrip().upper().startswith(("CREATE", "ALTER"))]
    assert second.schema_revision() == "0005"
    assert [item.key for item in second.load_items()] == ["PAY-1"]
    second.close()
    assert schema_differences(store_url) == []


def test_upsert_twice_updates_in_place(store: Store) -> None:
    first_run = store.start_run("plan")
    items = [make_item(f"PAY-{n}") for n in range(1, 4)]
    assert store.upsert_items(items, first_run) == UpsertCounts(inserted=3)

    second_run = store.start_run("plan")
    changed = dataclasses.replace(items[1], title="Renamed", revision="r2", job_size=8.0)
    counts = store.upsert_items([items[0], changed, make_item("PAY-9")], second_run)

    assert counts == UpsertCounts(inserted=1, updated=1, unchanged=1)
    stored = {item.key: item for item in store.load_items()}
    assert sorted(stored) == ["PAY-1", "PAY-2", "PAY-3", "PAY-9"]
    assert stored["PAY-2"] == changed
    assert store.count_items() == 4


def test_same_key_in_two_connections_is_two_items(store: Store) -> None:
    store.upsert_items([make_item("7", "ado-a"), make_item("7", "ado-b", title="other")])
    assert [i.title for i in store.load_items("ado-b")] == ["other"]
    assert store.count_items() == 2


def test_json_and_datetime_round_trip(store: Store) -> None:
    berlin = timezone(timedelta(hours=2))
    item = make_item(
        "PAY-5",
        labels=("kr-growth-1", "Ümlaut label"),
        links=(Link("Drives", "outward", "OKR-1"), Link("relates to", "inward", "PAY-9")),
        components=("Checkout", "API"),
        field_problems={"job_size": "'XL' is not a number"},
        updated=datetime(2025, 3, 10, 10, 30, 15, 123456, tzinfo=berlin),
        created=datetime(2024, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
        rank="0|hzzzzz:",
        business_value=13.0,
        priority="High",
        url="https://example.atlassian.net/browse/PAY-5",
        parent_key="PAY-1",
        team="Payments",
        project="PAY",
    )
    numeric_rank = make_item("PAY-6", rank=1999.5, level=None, labels=())
    store.upsert_items([item, numeric_rank])

    loaded = store.get_item("jira", "PAY-5")
    assert loaded == item
    assert loaded is not None
    assert loaded.updated == T0 and loaded.updated.utcoffset() == timedelta(0)
    assert loaded.created is not None and loaded.created.microsecond == 1
    assert loaded.links[1] == Link("relates to", "inward", "PAY-9")
    other = store.get_item("jira", "PAY-6")
    assert other is not None and other.rank == 1999.5 and other.level is None
    assert store.max_updated("jira") == T0


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        store.upsert_items([make_item("PAY-1", updated=datetime(2025, 1, 1, 12, 0))])


def test_ten_thousand_items_upsert_and_read_back(store: Store) -> None:
    run_id = store.start_run("plan")
    items = [make_item(f"PAY-{n}", labels=("kr-1",)) for n in range(10_000)]
    assert store.upsert_items(iter(items), run_id) == UpsertCounts(inserted=10_000)
    assert store.upsert_items(items, run_id) == UpsertCounts(unchanged=10_000)
    keys = [item.key for item in store.iter_items("jira")]
    assert len(keys) == 10_000 and len(set(keys)) == 10_000
    assert keys == sorted(keys)


def test_parallel_upserts_from_threads(store: Store) -> None:
    errors: list[BaseException] = []

    def pull(connection: str) -> None:
        try:
            for start in range(0, 600, 100):
                batch = [make_item(f"K-{n}", connection) for n in range(start, start + 100)]
                store.upsert_items(batch)
        except BaseException as exc:  # reported below, a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=pull, args=(f"c{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.count_items() == 2_400


def test_mark_missing_marks_restores_and_reports_unknown_keys(store: Store) -> None:
    run_id = store.start_run("plan")
    store.upsert_items([make_item(f"PAY-{n}") for n in range(1, 5)], run_id)

    scan = store.mark_missing("jira", {"PAY-1", "PAY-2", "PAY-77"}, run_id)
    assert (scan.marked_deleted, scan.restored, scan.not_stored) == (2, 0, ("PAY-77",))
    assert [i.key for i in store.load_items()] == ["PAY-1", "PAY-2"]
    assert store.count_items(include_deleted=True) == 4

    again = store.mark_missing("jira", {"PAY-1", "PAY-2", "PAY-3"}, run_id)
    assert (again.marked_deleted, again.restored) == (0, 1)
    store.upsert_items([make_item("PAY-4")])  # pulled again: no longer deleted
    assert [i.key for i in store.load_items()] == ["PAY-1", "PAY-2", "PAY-3", "PAY-4"]


def test_sync_state_round_trip(store: Store) -> None:
    assert store.get_sync_state("jira") is None
    state = SyncState("jira", watermark=T0, last_full_sync=T0 - timedelta(days=1))
    store.save_sync_state(state)
    store.save_sync_state(SyncState("ado", cursor="token-1"))
    moved = dataclasses.replace(state, watermark=T0 + timedelta(hours=1), last_deletion_scan=T0)
    store.save_sync_state(moved)

    assert store.get_sync_state("jira") == moved
    assert store.sync_states() == {"jira": moved, "ado": SyncState("ado", cursor="token-1")}


def test_run_lifecycle(store: Store) -> None:
    first = store.start_run("plan", trigger="schedule")
    second = store.start_run("apply")
    store.set_stage(second, "pull")
    assert [run.id for run in store.unfinished_runs()] == [first, second]

    result = {"alignment": {"percent": 87.5}, "generated": T0, "keys": ("A", "B")}
    store.finish_run(second, RunStatus.PARTIAL, error="jira: 401", result=result)

    run = store.get_run(second)
    assert run is not None
    assert (run.status, run.stage, run.mode, run.error) == (
        RunStatus.PARTIAL,
        "pull",
        "apply",
        "jira: 401",
    )
    assert run.result == {
        "alignment": {"percent": 87.5},
        "generated": T0.isoformat(),
        "keys": ["A", "B"],
    }
    assert run.finished is not None and run.finished >= run.started
    assert [r.id for r in store.last_runs(5)] == [second, first]
    assert [r.id for r in store.last_runs(5, status="running")] == [first]
    assert store.get_run(second + 100) is None
    with pytest.raises(LookupError):
        store.set_stage(second + 100, "pull")


def test_stage_progress_for_resume(store: Store) -> None:
    run_id = store.start_run("plan")
    store.start_stage(run_id, "pull", "jira")
    store.finish_stage(run_id, "pull", "jira", detail={"pulled": 12})
    store.start_stage(run_id, "pull", "ado")
    store.finish_stage(run_id, "pull", "ado", status=StageStatus.FAILED)
    store.start_stage(run_id, "align")

    assert store.is_stage_done(run_id, "pull", "jira")
    assert not store.is_stage_done(run_id, "pull", "ado")
    assert not store.is_stage_done(run_id, "align")
    progress = {(s.stage, s.connection): s for s in store.stage_progress(run_id)}
    assert progress[("pull", "jira")].detail == {"pulled": 12}
    assert progress[("align", "")].status is StageStatus.RUNNING

    store.start_stage(run_id, "pull", "jira")  # re-run after a crash starts it afresh
    assert not store.is_stage_done(run_id, "pull", "jira")
    with pytest.raises(LookupError):
        store.finish_stage(run_id, "report")


def test_sync_stats_are_replaced_per_run_and_connection(store: Store) -> None:
    run_id = store.start_run("plan")
    request_stats = {
        "requests": 7,
        "by_endpoint": {"POST /rest/api/3/search/jql": 2, "POST /rest/api/3/issue/bulkfetch": 5},
        "retries": 1,
        "throttled": 1,
        "waited_seconds": 2.5,
        "rate_limit": {"X-RateLimit-Remaining": "99"},
    }
    stats = SyncStats.from_request_stats(
        "jira", request_stats, pulled=420, duration_seconds=3.25, warnings=("slow",), since=T0
    )
    store.record_sync_stats(run_id, dataclasses.replace(stats, pulled=1))
    store.record_sync_stats(run_id, stats)
    assert store.sync_stats(run_id) == [stats]


def test_alignments_orphans_scores_replace_per_connection(store: Store) -> None:
    run_id = store.start_run("plan")
    store.record_alignments(
        run_id,
        [
            AlignmentRecord("jira", "PAY-1", "KR-1", "label", ("PAY-1",)),
            AlignmentRecord("jira", "PAY-2", "KR-1", "parent", ("PAY-2", "PAY-1")),
            AlignmentRecord("ado", "7", "KR-2", "rule", ("7",)),
        ],
    )
    store.record_alignments(
        run_id, [AlignmentRecord("jira", "PAY-3", "KR-1", "link", ("PAY-3",))], connection="jira"
    )
    assert [(a.connection, a.key) for a in store.alignments(run_id)] == [
        ("ado", "7"),
        ("jira", "PAY-3"),
    ]
    with pytest.raises(ValueError, match="'ado'"):
        store.record_orphans(run_id, [OrphanRecord("ado", "8", "no label")], connection="jira")

    store.record_orphans(run_id, [OrphanRecord("jira", "PAY-9", "no label, link or rule")])
    store.record_orphans(run_id, [OrphanRecord("jira", "PAY-9", "no label, link or rule")])
    assert store.orphans(run_id) == [OrphanRecord("jira", "PAY-9", "no label, link or rule")]

    inputs = {"business_value": 8.0, "time_criticality": 5.0, "risk_reduction": 3.0}
    scores = [
        ScoreRecord(
            "jira",
            "PAY-2",
            inputs | {"job_size": None},
            None,
            None,
            None,
            "0|b",
            None,
            "missing: job size",
        ),
        ScoreRecord("jira", "PAY-1", inputs | {"job_size": 2.0}, 16.0, 2.0, 8.0, "0|c", 1),
    ]
    store.record_scores(run_id, scores)
    assert store.scores(run_id) == [scores[1], scores[0]]


def rank_plan() -> ConnectionPlan:
    score = PlannedWrite("jira", "PAY-1", WriteField.WSJF_SCORE, 4.0, 8.0, "rev-1")
    labels = PlannedWrite("jira", "PAY-3", WriteField.LABELS, ("a",), ("a", "no-okr"), "rev-3")
    rank_writes = (
        PlannedWrite("jira", "PAY-2", WriteField.RANK, 3, 1, "rev-2"),
        PlannedWrite("jira", "PAY-4", WriteField.RANK, 4, 2, "rev-4"),
    )
    move = RankMove("jira", ("PAY-2", "PAY-4"), None, "PAY-1", rank_writes)
    return ConnectionPlan("jira", writes=(score, labels), moves=(move,))


def test_audit_log_is_idempotent(store: Store) -> None:
    run_id = store.start_run("apply")
    plan = rank_plan()
    assert store.record_plan(run_id, plan) == 4
    assert store.record_plan(run_id, plan) == 4
    rows = store.audit_rows(run_id)
    assert len(rows) == 4 and {row.status for row in rows} == {AuditStatus.PLANNED}
    assert rows[1].write.new == ("a", "no-okr")
    assert store.pending_plan(run_id, "jira") == plan

    written = WriteResult(plan.writes[0], WriteStatus.WRITTEN, new_revision="rev-1b")
    conflict = WriteResult(plan.moves[0].writes[0], WriteStatus.CONFLICT, error="changed")
    assert store.record_write_results(run_id, [written, conflict]) == 2
    store.record_plan(run_id, plan)  # planning again never resets a tried write

    by_key = {row.write.item_key: row for row in store.audit_rows(run_id)}
    assert len(by_key) == 4
    assert by_key["PAY-1"].status is AuditStatus.WRITTEN
    assert by_key["PAY-1"].new_revision == "rev-1b" and by_key["PAY-1"].applied_at is not None
    assert (by_key["PAY-2"].status, by_key["PAY-2"].error) == (AuditStatus.CONFLICT, "changed")
    pending = store.pending_plan(run_id, "jira")
    assert pending.writes == (plan.writes[1],)
    assert [move.item_keys for move in pending.moves] == [("PAY-4",)]
    assert pending.moves[0].before_key == "PAY-1"
    assert [r.write.item_key for r in store.audit_rows(run_id, status="planned")] == [
        "PAY-3",
        "PAY-4",
    ]

    stranger = PlannedWrite("jira", "PAY-99", WriteField.RANK, 1, 2, "r")
    with pytest.raises(LookupError, match="PAY-99"):
        store.record_write_result(run_id, WriteResult(stranger, WriteStatus.WRITTEN))


def test_sqlite_file_in_a_new_folder_and_in_memory(tmp_path: Path) -> None:
    nested = Store(f"sqlite:///{tmp_path / 'new' / 'folder' / 'spm.db'}")
    nested.upsert_items([make_item("PAY-1")])
    assert (tmp_path / "new" / "folder" / "spm.db").exists()
    nested.close()
    memory = Store("sqlite://")
    memory.upsert_items([make_item("PAY-1"), make_item("PAY-2")])
    assert memory.count_items() == 2
    memory.close()


def test_sqlite_lock_always_succeeds(sqlite_url: str) -> None:
    first, second = Store(sqlite_url), Store(sqlite_url)
    with first.advisory_lock("sync:jira") as one, second.advisory_lock("sync:jira") as two:
        assert (one, two) == (True, True)
    first.close()
    second.close()


@pytest.mark.postgres
def test_postgres_advisory_lock_is_exclusive_across_stores(pg_url: str) -> None:
    first, second = Store(pg_url), Store(pg_url)
    try:
        with first.advisory_lock("sync:jira") as held:
            assert held is True
            with second.advisory_lock("sync:jira") as taken:
                assert taken is False
            with second.advisory_lock("sync:ado") as other:
                assert other is True
        with second.advisory_lock("sync:jira") as after_release:
            assert after_release is True
    finally:
        first.close()
        second.close()


@pytest.mark.postgres
def test_postgres_locks_held_beyond_the_pool_size_leave_the_store_usable(pg_url: str) -> None:
    store = Store(pg_url)
    try:
        with ExitStack() as held:
            names = [f"sync:connection-{index}" for index in range(20)]
            assert all(held.enter_context(store.advisory_lock(name)) for name in names)
            assert store.upsert_items([make_item("PAY-1")]).inserted == 1
            assert store.count_items() == 1
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_schema_argument_creates_and_isolates_the_schema(pg_url: str) -> None:
    fixture_schema = pg_url.rsplit("%3D", 1)[1]
    schema = f"{fixture_schema}_own"
    base_url = pg_url.split("?", 1)[0]
    settings = StoreSettings(url=base_url, schema=schema, password_env="SPM_TEST_DB_PASSWORD")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPM_TEST_DB_PASSWORD", "not-a-real-secret")
        store = Store.from_settings(settings)
    try:
        assert "not-a-real-secret" not in repr(store) and "***" in repr(store)
        store.upsert_items([make_item("PAY-1")])
        engine = create_engine(normalize_url(base_url))
        try:
            assert "work_items" in inspect(engine).get_table_names(schema=schema)
            assert "work_items" not in inspect(engine).get_table_names(schema=fixture_schema)
        finally:
            engine.dispose()
    finally:
        store.close()
        engine = create_engine(normalize_url(base_url))
        with engine.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        engine.dispose()
