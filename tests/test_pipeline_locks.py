"""Several workers on one PostgreSQL store: advisory locks keep two of them off one connection,
and a run still alive in another worker is never closed as interrupted."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from spm_sync.config.model import Config, WriteMode, load_config
from spm_sync.core.domain import WorkItem
from spm_sync.pipeline.cycle import BUSY, CycleDeps, CycleOutcome, close_interrupted_runs, run_cycle
from spm_sync.store import RunStatus, Store
from tests.cycle_fixtures import Clock, FakeConnector, FakeTracker, fake_config, three_epics

pytestmark = pytest.mark.postgres


class Watch:
    """Counts pulls in progress per connection, across every worker."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active: Counter[str] = Counter()
        self.most: Counter[str] = Counter()
        self.pulls: Counter[str] = Counter()


class SlowConnector(FakeConnector):
    def __init__(self, tracker: FakeTracker, watch: Watch) -> None:
        super().__init__(tracker)
        self.watch = watch

    def pull(self, since: datetime | None) -> Iterator[WorkItem]:
        with self.watch.lock:
            self.watch.active[self.name] += 1
            self.watch.pulls[self.name] += 1
            self.watch.most[self.name] = max(
                self.watch.most[self.name], self.watch.active[self.name]
            )
        try:
            time.sleep(0.4)  # long enough for the other worker to try the same connection
            yield from super().pull(since)
        finally:
            with self.watch.lock:
                self.watch.active[self.name] -= 1


def pg_config(tmp_path: Path, pg_url: str) -> Config:
    config = fake_config(tmp_path, ("alpha", "beta"))
    data = yaml.safe_load(config.source.read_text(encoding="utf-8"))  # type: ignore[union-attr]
    data["store"] = {"url": pg_url}
    config.source.write_text(yaml.safe_dump(data), encoding="utf-8")  # type: ignore[union-attr]
    return load_config(config.source)  # type: ignore[arg-type]


def test_two_workers_never_pull_one_connection_at_once(tmp_path: Path, pg_url: str) -> None:
    config = pg_config(tmp_path, pg_url)
    clock = Clock()
    trackers = {name: FakeTracker(name, three_epics(name), clock) for name in ("alpha", "beta")}
    watch = Watch()
    start = threading.Barrier(2)
    outcomes: list[CycleOutcome] = []

    def worker() -> None:
        with Store.from_settings(config.store) as store:  # its own connections, as a process
            deps = CycleDeps(
                store,
                connector_factory=lambda s: SlowConnector(trackers[s.name], watch),  # type: ignore[attr-defined,arg-type,return-value]
                clock=clock,
            )
            start.wait()
            outcomes.append(run_cycle(config, deps, mode=WriteMode.APPLY, send_email=False))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert watch.most == Counter({"alpha": 1, "beta": 1})
    assert watch.pulls == Counter({"alpha": 1, "beta": 1})  # each synced once, by one worker
    skipped = [
        health.name
        for outcome in outcomes
        if outcome.result is not None
        for health in outcome.result.connections
        if health.error == BUSY
    ]
    whole = [outcome for outcome in outcomes if outcome.skipped]
    assert len(skipped) + 2 * len(whole) == 2
    # Each connection was written by the one worker that pulled it, each write once.
    with Store.from_settings(config.store) as store:
        written = Counter(
            row.write.connection
            for outcome in outcomes
            if outcome.run_id is not None
            for row in store.audit_rows(outcome.run_id, status="written")
        )
    for name, tracker in trackers.items():
        assert written[name] == len(tracker.writes) > 0
        assert len({(key, field) for key, field, _ in tracker.writes}) == len(tracker.writes)

    # Locks go with the cycle: the next one syncs both.
    with Store.from_settings(config.store) as store:
        deps = CycleDeps(
            store, connector_factory=lambda s: SlowConnector(trackers[s.name], watch), clock=clock
        )  # type: ignore[attr-defined,arg-type,return-value]
        after = run_cycle(config, deps, mode=WriteMode.APPLY, send_email=False)
    assert after.result is not None and after.result.status == "ok"


def test_a_run_alive_in_another_worker_is_not_closed(tmp_path: Path, pg_url: str) -> None:
    config = pg_config(tmp_path, pg_url)
    with Store.from_settings(config.store) as one, Store.from_settings(config.store) as two:
        alive = one.start_run("apply", trigger="schedule")
        with one.advisory_lock(f"run:{alive}"):
            assert close_interrupted_runs(two, current_run=999) == []
            assert one.get_run(alive).status is RunStatus.RUNNING
        assert close_interrupted_runs(two, current_run=999) == [alive]
        assert one.get_run(alive).status is RunStatus.FAILED
