"""Helpers for the pipeline tests: an in-memory tracker and its connector (for fast tests of
the pipeline's own logic), configs written to disk, and the sandbox pair (for end-to-end
tests over HTTP)."""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from connectors.base import ConnectorError
from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.generator import generate_portfolio
from connectors.sandbox.jira_server import JiraSandbox
from connectors.sandbox.portfolio import SeedPortfolio
from spm_sync.cli.demo import DEMO_SECRETS, LoopbackSmtp, Mailbox, sandboxes, write_demo_config
from spm_sync.config.model import Config, load_config
from spm_sync.core.domain import (
    ConnectionPlan,
    Level,
    StatusCategory,
    WorkItem,
    WriteField,
    WriteResult,
    WriteStatus,
)
from spm_sync.core.requests import RequestStats

START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
OKRS = {
    "objectives": [
        {
            "id": "O1",
            "title": "Grow",
            "key_results": [
                {"id": "KR-1", "title": "Double sign-ups"},
                {"id": "KR-2", "title": "Halve churn"},
            ],
        }
    ]
}


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: float = 1) -> datetime:
        self.now += timedelta(minutes=minutes)
        return self.now


def epic(connection: str, key: str, *, bv: float, tc: float, rr: float, size: float,
         labels: tuple[str, ...] = (), rank: float | None = None,
         updated: datetime = START - timedelta(days=3)) -> WorkItem:  # fmt: skip
    return WorkItem(
        connection=connection,
        key=key,
        id=key,
        type="Epic",
        level=Level.EPIC,
        title=f"Epic {key}",
        status="Active",
        status_category=StatusCategory.IN_PROGRESS,
        updated=updated,
        revision="1",
        labels=labels,
        business_value=bv,
        time_criticality=tc,
        risk_reduction=rr,
        job_size=size,
        rank=rank,
        team="Team A",
    )


@dataclass
class FakeTracker:
    """An in-memory tracker: every write or human edit moves `revision` and `updated`."""

    name: str
    items: dict[str, WorkItem]
    clock: Clock
    pulls: list[datetime | None] = field(default_factory=list)
    scans: int = 0
    writes: list[tuple[str, WriteField, object]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def edit(self, key: str, **changes: Any) -> WorkItem:
        with self.lock:
            item = self.items[key]
            revision = str(int(item.revision) + 1)
            self.clock.advance(0.01)
            item = dataclasses.replace(item, revision=revision, updated=self.clock(), **changes)
            self.items[key] = item
            return item


class FakeConnector:
    """Implements the `Connector` protocol over a `FakeTracker` (numeric ranks, as ADO).

    `fail_pull_after`: raise a `ConnectorError` after that many items; `before_push`: called
    with the plan before the freshness check (a human editing between plan and apply)."""

    rank_kind = "numeric"

    def __init__(
        self,
        tracker: FakeTracker,
        *,
        fail_pull_after: int | None = None,
        before_push: Callable[[ConnectionPlan], None] | None = None,
    ) -> None:
        self.tracker = tracker
        self.name = tracker.name
        self.stats = RequestStats()
        self.warnings: list[str] = []
        self.fail_pull_after = fail_pull_after
        self.before_push = before_push
        self.closed = False

    def pull(self, since: datetime | None) -> Iterator[WorkItem]:
        self.tracker.pulls.append(since)
        self.stats.count("GET /items")
        with self.tracker.lock:
            items = sorted(self.tracker.items.values(), key=lambda item: item.key)
        for count, item in enumerate(items):
            if self.fail_pull_after is not None and count >= self.fail_pull_after:
                raise ConnectorError(f"{self.name}: the tracker went away mid-pull")
            if since is None or item.updated >= since:
                yield item

    def scan_keys(self) -> set[str]:
        self.tracker.scans += 1
        self.stats.count("GET /keys")
        return set(self.tracker.items)

    def push(self, plan: ConnectionPlan) -> Iterator[WriteResult]:
        if self.before_push is not None:
            self.before_push(plan)
        # One freshness check per push, as the real connectors do: our own first write to an
        # item must not look like a human edit to its second.
        current = {w.item_key: self.tracker.items.get(w.item_key) for w in plan.writes}
        for write in plan.writes:
            self.stats.count("PATCH /items/{id}")
            found = current[write.item_key]
            if found is None:
                yield WriteResult(write, WriteStatus.FAILED, "gone")
            elif found.revision != write.expected_revision:
                yield WriteResult(write, WriteStatus.CONFLICT, "changed since planned")
            else:
                attribute = write.field.value
                updated = self.tracker.edit(write.item_key, **{attribute: write.new})
                self.tracker.writes.append((write.item_key, write.field, write.new))
                yield WriteResult(write, WriteStatus.WRITTEN, new_revision=updated.revision)

    def close(self) -> None:
        self.closed = True


def fake_config(folder: Path, names: tuple[str, ...] = ("alpha",), **overrides: Any) -> Config:
    """A config of azure_devops connections (served by `FakeConnector`s) on SQLite."""
    (folder / "okrs.yaml").write_text(yaml.safe_dump(OKRS), encoding="utf-8")
    connections = [
        {
            "kind": "azure_devops",
            "name": name,
            "url": "https://dev.azure.com/example",
            "project": "P",
            "auth": {"token_env": "SPM_TEST_FAKE_PAT"},
            "wsjf_fields": {"risk_reduction": "Custom.Risk", "score": "Custom.WSJF"},
            "write_back": {"score": True, "rank": True, "orphan_label": "no-okr"},
            "deletion_scan_hours": 24,
        }
        for name in names
    ]
    data: dict[str, Any] = {
        "store": {"url": f"sqlite:///{folder / 'spm-sync.db'}"},
        "okrs": "okrs.yaml",
        "connections": connections,
        "report": {"output_dir": str(folder / "reports")},
    }
    for key, value in overrides.items():
        data[key] = value
    path = folder / "spm-sync.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return load_config(path)


def three_epics(connection: str) -> dict[str, WorkItem]:
    items = [
        epic(connection, "E1", bv=8, tc=5, rr=3, size=8, labels=("kr-KR-1",), rank=1000),
        epic(connection, "E2", bv=13, tc=8, rr=5, size=3, labels=("kr-KR-2",), rank=2000),
        epic(connection, "E3", bv=3, tc=2, rr=1, size=13, rank=3000),
    ]
    return {item.key: item for item in items}


# -- sandboxes -------------------------------------------------------------------------------


@dataclass
class SandboxSetup:
    portfolio: SeedPortfolio
    jira: JiraSandbox
    ado: AzureDevOpsSandbox
    config_path: Path
    mailbox: Mailbox

    def config(self) -> Config:
        return load_config(self.config_path)


@contextmanager
def sandbox_setup(
    folder: Path, *, size: int = 300, seed: int = 7, store_url: str | None = None
) -> Iterator[SandboxSetup]:
    """Both sandboxes with one seeded portfolio, an SMTP capture server, and the demo config
    (write-back applied) pointing at them; the config's secrets are set while inside."""
    saved = {name: os.environ.get(name) for name in DEMO_SECRETS}
    os.environ.update(DEMO_SECRETS)
    portfolio = generate_portfolio(size, seed=seed)
    mailbox = Mailbox()
    smtp = LoopbackSmtp(mailbox, hostname="127.0.0.1", port=0)
    smtp.start()
    try:
        with sandboxes(portfolio) as (jira, ado):
            path = write_demo_config(folder, portfolio, jira, ado, smtp.port, store_url=store_url)
            yield SandboxSetup(portfolio, jira, ado, path, mailbox)
    finally:
        smtp.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
