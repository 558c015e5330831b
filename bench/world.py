"""A world to run spm-sync in: a seeded portfolio on both sandbox trackers and the demo config
pointed at them (write-back applied, email off, patient retries, a deletion scan every run),
plus the "humans" who edit items between cycles and race spm-sync's writes inside a cycle.
Used by the soak (`bench.soak`, `bench.soak_kill`) and the whole-cycle benchmark.

Human edits go through the sandboxes' own `touch` (and, for a Jira rank move, the sandbox's
rank store), never through the API, so the sandboxes' write logs hold spm-sync's writes only.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from connectors.base import Connector
from connectors.registry import ConnectorFactory, default_connector_factory
from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.generator import generate_portfolio
from connectors.sandbox.jira_server import JiraSandbox
from connectors.sandbox.portfolio import SeedPortfolio
from connectors.sandbox.server import Faults
from connectors.settings import TrackerSettings
from spm_sync.cli.demo import DEMO_SECRETS, sandboxes, write_demo_config
from spm_sync.config.model import WriteMode, load_config
from spm_sync.core.domain import ConnectionPlan, WorkItem, WriteResult
from spm_sync.core.history import StatusChange
from spm_sync.pipeline.cycle import CycleDeps, CycleOutcome, run_cycle
from spm_sync.store import Store

JIRA, ADO = "jira", "azure-devops"
"""Connection names in the demo config."""
FIBONACCI = (1, 2, 3, 5, 8, 13, 20)
SOAK_FAULTS = Faults(
    latency_ms=1,
    jitter_ms=15,
    throttle_rate=0.10,
    unavailable_rate=0.05,
    reset_rate=0.01,
    retry_after_seconds=0,
    seed=41,
)
"""10% 429 and 5% 503 (Retry-After: 0), 1% connection resets, 1-16 ms latency."""
PATIENT_RETRIES = {"max_attempts": 12, "base_delay_seconds": 0.02, "max_wait_seconds": 5}
"""With 16% of requests failing, 12 tries leave a 0.16^12 (3e-10) chance that one request
exhausts its retries; the default 6 tries would fail about one request in 60,000."""


@dataclass
class World:
    """Both sandboxes, the portfolio they serve, and the config file pointing at them."""

    portfolio: SeedPortfolio
    jira: JiraSandbox
    ado: AzureDevOpsSandbox
    config_path: Path

    def scope_keys(self, connection: str) -> list[str]:
        """Items WSJF scores and ranks (open epics; Azure DevOps also features), as seeded."""
        if connection == JIRA:
            seeds, types = self.portfolio.jira, ("Epic",)
        else:
            seeds, types = self.portfolio.azure_devops, ("Epic", "Feature")
        return [s.key for s in seeds if s.type in types and s.status_category != "Done"]

    def tracker_keys(self, connection: str) -> set[str]:
        with self.sandbox(connection).lock:
            if connection == JIRA:
                return set(self.jira.store.by_key)
            return {str(item_id) for item_id in self.ado.store.items}

    def sandbox(self, connection: str) -> JiraSandbox | AzureDevOpsSandbox:
        return self.jira if connection == JIRA else self.ado

    def set_faults(self, faults: Faults) -> None:
        self.jira.set_faults(faults)
        self.ado.set_faults(faults)

    @cached_property
    def database(self) -> Path:
        """The SQLite file of the config's store."""
        return Path(load_config(self.config_path).store.url.removeprefix("sqlite:///"))


def newest_run(database: Path, timeout: float = 1.0) -> tuple[str, str] | None:
    """(stage, status) of the newest run in a store, read as another process would (WAL lets
    a reader in while spm-sync writes); None before the first run or when it cannot be read."""
    try:
        uri = f"file:{database}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True, timeout=timeout)) as connection:
            query = "SELECT stage, status FROM runs ORDER BY id DESC LIMIT 1"
            row = connection.execute(query).fetchone()
    except sqlite3.Error:
        return None
    return (row[0], row[1]) if row else None


def write_soak_config(folder: Path, world: World, store_url: str | None = None) -> Path:
    """The demo config with patient retries, a deletion scan every run and no email."""
    path = write_demo_config(
        folder, world.portfolio, world.jira, world.ado, 25, store_url=store_url
    )
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for connection in data["connections"]:
        connection["retry"] = dict(PATIENT_RETRIES)
        connection["deletion_scan_hours"] = 0
    data["report"]["email"]["enabled"] = False
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@contextmanager
def world(folder: Path, size: int, seed: int = 7) -> Iterator[World]:
    """Sandboxes with a seeded portfolio (no faults yet) and the config; secrets in os.environ."""
    import os

    os.environ.update(DEMO_SECRETS)
    portfolio = generate_portfolio(size, seed=seed)
    with ExitStack() as stack:
        jira, ado = stack.enter_context(sandboxes(portfolio))
        made = World(portfolio, jira, ado, folder / "spm-sync.yaml")
        made.config_path = write_soak_config(folder, made)
        yield made


def apply_cycle(
    world_: World, store: Store, factory: ConnectorFactory | None = None
) -> CycleOutcome:
    """One cycle on `world_`'s config in apply mode, no email: what every soak runs. The
    connectors are `factory`'s, by default real ones with an in-memory discovery cache."""
    factory = factory or default_connector_factory(discovery_cache_dir=None)
    deps = CycleDeps(store, connector_factory=factory)
    return run_cycle(load_config(world_.config_path), deps, mode=WriteMode.APPLY, send_email=False)


# -- humans ----------------------------------------------------------------------------------
@dataclass
class Humans:
    """Random human edits, seeded; `edited` records (cycle, connection, key) of each."""

    world: World
    rng: random.Random
    edited: list[tuple[int, str, str]] = field(default_factory=list)

    def edit_between_cycles(self, cycle: int, count: int) -> None:
        """`count` edits per tracker on scored items: WSJF inputs, labels, or the rank."""
        for connection in (JIRA, ADO):
            for key in self.rng.sample(self.world.scope_keys(connection), count):
                kind = self.rng.choice(("wsjf", "labels", "rank"))
                getattr(self, f"_{kind}")(connection, key)
                self.edited.append((cycle, connection, key))

    def race(self, connection: str, key: str, cycle: int) -> None:
        """An edit made between spm-sync's plan and its write (a retitle, as a person would)."""
        title = f"Edited during cycle {cycle} ({self.rng.randrange(10**6)})"
        if connection == JIRA:
            self.world.jira.touch(key, summary=title)
        else:
            self.world.ado.touch(int(key), **{"System.Title": title})
        self.edited.append((cycle, connection, key))

    def _wsjf(self, connection: str, key: str) -> None:
        bv, tc, size = (self.rng.choice(FIBONACCI) for _ in range(3))
        if connection == JIRA:
            self.world.jira.touch(key, business_value=bv, time_criticality=tc, job_size=size)
        else:
            values = {
                "Microsoft.VSTS.Common.BusinessValue": bv,
                "Microsoft.VSTS.Common.TimeCriticality": tc,
                "Microsoft.VSTS.Scheduling.Effort": size,
            }
            self.world.ado.touch(int(key), **values)

    def _labels(self, connection: str, key: str) -> None:
        kr = self.rng.choice(self.world.portfolio.key_results).id
        if connection == JIRA:
            with self.world.jira.lock:
                labels = set(self.world.jira.store.by_key[key].labels)
            labels ^= {f"kr-{kr}"}
            self.world.jira.touch(key, labels=sorted(labels))
        else:
            tags = str(self.world.ado.work_item(int(key))["fields"].get("System.Tags") or "")
            names = {tag.strip() for tag in tags.split(";") if tag.strip()} ^ {f"KR-{kr}"}
            self.world.ado.touch(int(key), **{"System.Tags": "; ".join(sorted(names))})

    def _rank(self, connection: str, key: str) -> None:
        anchor = self.rng.choice([k for k in self.world.scope_keys(connection) if k != key])
        if connection == JIRA:
            jira = self.world.jira
            with jira.lock:
                issue, other = jira.store.by_key[key], jira.store.by_key[anchor]
                jira.store.rank_block([issue], other, before=self.rng.random() < 0.5)
                jira.store.bump(issue)
        else:
            rank = self.world.ado.work_item(int(anchor))["fields"].get(STACK_RANK) or 0.0
            self.world.ado.touch(int(key), **{STACK_RANK: float(rank) + 0.5})


STACK_RANK = "Microsoft.VSTS.Common.StackRank"


# -- the race: a human edit between plan and write -------------------------------------------
class RacingConnector:
    """A real connector whose `push` first lets `before_push` edit some planned items."""

    def __init__(self, inner: Connector, before_push: Callable[[ConnectionPlan], None]) -> None:
        self.inner = inner
        self.before_push = before_push
        # The inner connector's own objects: its counts and warnings are these.
        self.name = inner.name
        self.rank_kind = inner.rank_kind
        self.stats = inner.stats
        self.warnings = inner.warnings

    def pull(self, since: Any) -> Iterator[WorkItem]:
        return self.inner.pull(since)

    def scan_keys(self) -> set[str]:
        return self.inner.scan_keys()

    def pull_history(
        self, changed_keys: Sequence[str], cursor: str | None
    ) -> Iterator[StatusChange]:
        return self.inner.pull_history(changed_keys, cursor)

    @property
    def history_cursor(self) -> str | None:
        return self.inner.history_cursor

    def push(self, plan: ConnectionPlan) -> Iterator[WriteResult]:
        self.before_push(plan)
        yield from self.inner.push(plan)

    def close(self) -> None:
        self.inner.close()


def planned_keys(plan: ConnectionPlan) -> list[str]:
    keys = [write.item_key for write in plan.writes]
    keys += [key for move in plan.moves for key in move.item_keys]
    return sorted(set(keys))


def racing_factory(
    humans: Humans, cycle: Callable[[], int], per_push: int, raced: dict[int, set[tuple[str, str]]]
) -> ConnectorFactory:
    """Real connectors (in-memory discovery cache) whose pushes are raced by `humans`:
    `per_push` planned items per connection are edited right before the push; `raced[cycle]`
    collects them."""
    base = default_connector_factory(discovery_cache_dir=None)

    def make(settings: TrackerSettings) -> Connector:
        def before_push(plan: ConnectionPlan) -> None:
            keys = planned_keys(plan)
            for key in humans.rng.sample(keys, min(per_push, len(keys))):
                humans.race(plan.connection, key, cycle())
                raced.setdefault(cycle(), set()).add((plan.connection, key))

        return RacingConnector(base(settings), before_push)

    return make
