"""Run headlines kept apart from the result documents: what the store returns for the trend and
"change since last run", the migration that copies them out of existing results (SQLite and
PostgreSQL), and a cycle whose history never needs a stored result."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, text, update

from spm_sync.config.model import WriteMode
from spm_sync.pipeline.cycle import CycleDeps, run_cycle
from spm_sync.store import RunStatus, Store
from spm_sync.store.engine import MIGRATIONS_DIR, normalize_url
from spm_sync.store.runs import RUNS
from tests.cycle_fixtures import Clock, FakeConnector, FakeTracker, fake_config, three_epics

HEADLINE = {"alignment_pct_items": 62.5, "orphans": 4, "writes_planned": 9}


def finished(store: Store, status: RunStatus, trigger: str = "cli", **values: object) -> int:
    run_id = store.start_run("plan", trigger=trigger)
    store.finish_run(run_id, status, **values)  # type: ignore[arg-type]
    return run_id


def test_run_headlines_are_finished_cycle_runs_newest_first(store: Store) -> None:
    first = finished(store, RunStatus.SUCCEEDED, headline={**HEADLINE, "orphans": 1})
    undo = finished(store, RunStatus.SUCCEEDED, trigger="undo", headline=HEADLINE)
    finished(store, RunStatus.FAILED, error="jira: 401")
    partial = finished(store, RunStatus.PARTIAL, result={"big": "document"}, headline=HEADLINE)
    failed_with_headline = finished(store, RunStatus.FAILED, headline=HEADLINE)
    running = store.start_run("plan")

    found = store.run_headlines(10, before=running, exclude_triggers=("undo",))
    assert [(r.run_id, r.status) for r in found] == [
        (partial, RunStatus.PARTIAL),
        (first, RunStatus.SUCCEEDED),
    ]
    assert found[1].headline == {**HEADLINE, "orphans": 1}
    assert found[0].finished >= found[0].started and found[0].trigger == "cli"
    assert [r.run_id for r in store.run_headlines(1)] == [partial]
    assert [r.run_id for r in store.run_headlines(10, before=partial)] == [undo, first]
    every = store.run_headlines(10, statuses=list(RunStatus))
    assert [r.run_id for r in every] == [failed_with_headline, partial, undo, first]
    assert store.latest_run_with_result() == partial


def test_a_headline_is_kept_when_the_run_is_closed_again(store: Store) -> None:
    run_id = finished(store, RunStatus.SUCCEEDED, result={"x": 1}, headline=HEADLINE)
    store.finish_run(run_id, RunStatus.PARTIAL, error="email: not sent")
    (record,) = store.run_headlines(5)
    assert record.headline == HEADLINE and record.status is RunStatus.PARTIAL
    assert store.get_run(run_id).result == {"x": 1}  # type: ignore[union-attr]


def _upgrade(url: str, revision: str) -> None:
    """Alembic to `revision` the way `Store` migrates (its connection, its version table)."""
    engine = create_engine(normalize_url(url))
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def test_migration_0002_copies_headlines_out_of_stored_results(store_url: str) -> None:
    _upgrade(store_url, "0001")
    documents = [
        {"run_id": "1", "headline": HEADLINE, "alignment": {"orphans": [1, 2, 3]}},
        {"run_id": "2", "alignment": {}},  # no headline (not a result document)
        {"run_id": "3", "headline": "not an object"},
        None,
    ]
    engine = create_engine(normalize_url(store_url))
    with engine.begin() as connection:
        for number, document in enumerate(documents, start=1):
            connection.execute(
                text(
                    "INSERT INTO runs (id, started, finished, status, mode, trigger, result) "
                    "VALUES (:id, :at, :at, 'succeeded', 'plan', 'cli', :result)"
                ),
                {
                    "id": number,
                    "at": datetime(2026, 3, number, tzinfo=UTC),
                    "result": None if document is None else json.dumps(document),
                },
            )
    engine.dispose()

    store = Store(store_url)  # upgrades to head
    try:
        assert store.schema_revision() == "0005"
        assert [(r.run_id, dict(r.headline)) for r in store.run_headlines(10)] == [(1, HEADLINE)]
        assert store.get_run(1).result["alignment"] == {"orphans": [1, 2, 3]}  # type: ignore[index,union-attr]
    finally:
        store.close()


def test_a_cycle_reads_its_history_from_headlines_not_results(tmp_path: Path) -> None:
    """Run 1's result document is gone (as if unreadable); run 2 still gets its previous run
    and trend from run 1's stored headline."""
    config = fake_config(tmp_path)
    clock = Clock()
    tracker = FakeTracker("alpha", three_epics("alpha"), clock)
    with Store.from_settings(config.store) as store:
        deps = CycleDeps(store, connector_factory=lambda _: FakeConnector(tracker), clock=clock)  # type: ignore[arg-type,return-value]
        first = run_cycle(config, deps, mode=WriteMode.PLAN, send_email=False)
        assert first.result is not None and first.run_id is not None
        engine = create_engine(config.store.url)
        with engine.begin() as db:
            db.execute(update(RUNS).where(RUNS.c.id == first.run_id).values(result=None))
        engine.dispose()
        clock.advance(60)
        second = run_cycle(config, deps, mode=WriteMode.PLAN, send_email=False)

    assert second.result is not None and second.result.previous is not None
    assert second.result.previous.run_id == str(first.run_id)
    assert second.result.previous.headline == first.result.headline
    assert [point.run_id for point in second.result.trend] == [
        str(first.run_id),
        str(second.run_id),
    ]
    assert second.result.trend[0].orphans == first.result.headline.orphans == 1
    assert second.result.change is not None and second.result.change.writes_planned == 0
