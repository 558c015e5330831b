"""Per-tracker adapters of the connector contract: each starts its sandbox with a seeded
portfolio, builds its connector, and does to the tracker what the scenarios need done behind
the connector's back (a person's edit, a deletion, a fault), then reads stored values back.

The scenarios (`tests/contract/test_*.py`) see only `TrackerKit` and the `Connector` protocol,
so a new tracker joins the contract by writing one adapter here.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Literal

from connectors.azure_devops import AzureDevOpsConnector
from connectors.base import Connector
from connectors.jira import JiraConnector
from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.generator import generate_portfolio
from connectors.sandbox.jira_server import JiraSandbox
from connectors.sandbox.portfolio import SeedItem
from connectors.sandbox.server import Faults, SandboxServer
from connectors.settings import AzureDevOpsSettings, JiraSettings
from spm_sync.core.domain import ConnectionPlan, Level
from tests.jira_fixtures import WSJF_FIELD_NAMES

REFERENCE = datetime(2026, 3, 2, tzinfo=UTC)
"""When the seeded portfolio was last edited; the sandboxes' clocks start a day later."""
SIZE = 300
KINDS = ("jira-cloud", "jira-datacenter", "azure-devops")
Kind = Literal["jira-cloud", "jira-datacenter", "azure-devops"]
FAST_RETRY = {"max_attempts": 12, "base_delay_seconds": 0.01, "max_wait_seconds": 5}


@dataclass
class SandboxClock:
    """The trackers' clock: moved on by hand, so "changed since" windows are exact."""

    now: datetime = REFERENCE + timedelta(days=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: float) -> datetime:
        self.now += timedelta(minutes=minutes)
        return self.now


@dataclass
class RecordedSleep:
    """Waits recorded instead of slept (a Retry-After of seconds costs the suite nothing), and
    a monotonic clock that moves with them."""

    now: float = 1000.0
    waits: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


@cache
def _portfolio(tracker: str) -> tuple[SeedItem, ...]:
    generated = generate_portfolio(
        SIZE, seed=3, jira_share=1.0 if tracker == "jira" else 0.0, now=REFERENCE
    )
    return tuple(generated.jira if tracker == "jira" else generated.azure_devops)


class TrackerKit(ABC):
    """One running sandbox tracker and what the contract needs of it."""

    kind: Kind
    name: str
    seeds: tuple[SeedItem, ...]
    clock: SandboxClock
    sandbox: SandboxServer
    levels: dict[str, Level]
    okr_link_type: str
    """A link type the tracker has, as a user names it in `okr.link_types`."""
    incremental_requests: int
    """The requests an incremental pull of a few changed items makes on a new connector (a
    pull that finds nothing makes at most as many)."""

    @abstractmethod
    def connector(
        self, sleep: RecordedSleep | None = None, secret: str | None = None, **overrides: Any
    ) -> Connector:
        """A fresh connector (its own request counts) for the seeded scope; `secret` replaces
        the tracker's token or password (a wrong one)."""

    @abstractmethod
    def unknown_field(self) -> tuple[dict[str, Any], str]:
        """Settings overrides that name a WSJF input the tracker does not have, and the
        setting the error must name."""

    @abstractmethod
    def human_edit(self, key: str) -> None:
        """A person retitles the item: its revision moves on."""

    @abstractmethod
    def edit_after_next_read(self, key: str) -> None:
        """A person edits the item right after a client next reads it."""

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def stored_title(self, key: str) -> str: ...

    @abstractmethod
    def stored_score(self, key: str) -> float | None:
        """The WSJF score field as the tracker stores it (read off the sandbox, not the API)."""

    @abstractmethod
    def score_writes(self) -> list[str]:
        """The keys of every score value a client wrote, one entry per write applied."""

    @abstractmethod
    def rank_writes(self) -> list[str]:
        """The keys of every rank value a client wrote, one entry per write applied."""

    @abstractmethod
    def push_bound(self, plan: ConnectionPlan) -> int:
        """The most requests `push(plan)` may make on a connector that has pulled (the
        documented cost: docs/design-notes.md, "Writing safely")."""

    def set_faults(self, faults: Faults) -> None:
        self.sandbox.set_faults(faults)


class JiraKit(TrackerKit):
    okr_link_type = "Relates"
    incremental_requests = 3  # serverInfo, field list, one search page with the fields

    def __init__(self, sandbox: JiraSandbox, clock: SandboxClock) -> None:
        self.sandbox: JiraSandbox = sandbox
        self.kind = "jira-cloud" if sandbox.flavour == "cloud" else "jira-datacenter"
        self.name = f"contract-{self.kind}"
        self.seeds = _portfolio("jira")
        self.clock = clock
        self.score_id = sandbox.field_id("WSJF Score")
        self.rank_id = sandbox.field_id("Rank")
        self.levels = dict(self.settings().levels)

    def settings(self, **overrides: Any) -> JiraSettings:
        projects = ", ".join(sorted({item.project for item in self.seeds}))
        auth = (
            {"user_env": "SANDBOX_USER", "token_env": "SANDBOX_TOKEN"}
            if self.sandbox.flavour == "cloud"
            else {"method": "bearer", "token_env": "SANDBOX_TOKEN"}
        )
        values: dict[str, Any] = {
            "kind": "jira",
            "name": self.name,
            "url": self.sandbox.url,
            "auth": auth,
            "jql": f"project in ({projects})",
            "wsjf_fields": dict(WSJF_FIELD_NAMES),
            "workers": 4,
            "retry": FAST_RETRY,
        }
        values.update(overrides)
        return JiraSettings.model_validate(values)

    def connector(
        self, sleep: RecordedSleep | None = None, secret: str | None = None, **overrides: Any
    ) -> JiraConnector:
        token = self.sandbox.token if secret is None else secret
        environ = {"SANDBOX_USER": self.sandbox.user, "SANDBOX_TOKEN": token}
        return JiraConnector(
            self.settings(**overrides), environ=environ, sleep=sleep or RecordedSleep()
        )

    def unknown_field(self) -> tuple[dict[str, Any], str]:
        names = {**WSJF_FIELD_NAMES, "job_size": "Job Sise"}
        return {"wsjf_fields": names}, "wsjf_fields.job_size"

    def human_edit(self, key: str) -> None:
        self.clock.advance(1)  # `updated` is the revision: a person edits a minute later
        self.sandbox.touch(key, summary=f"{key} retitled by a person")

    def edit_after_next_read(self, key: str) -> None:
        self.sandbox.change_on_read.add(key)

    def delete(self, key: str) -> None:
        self.sandbox.delete(key)

    def stored_title(self, key: str) -> str:
        return str(self.sandbox.issue(key)["fields"]["summary"])

    def stored_score(self, key: str) -> float | None:
        value = self.sandbox.issue(key)["fields"].get(self.score_id)
        return None if value is None else float(value)

    def score_writes(self) -> list[str]:
        return [write.key for write in self.sandbox.writes if write.field == self.score_id]

    def rank_writes(self) -> list[str]:
        return [write.key for write in self.sandbox.writes if write.field == self.rank_id]

    def push_bound(self, plan: ConnectionPlan) -> int:
        """One freshness read per 100 keys (Cloud bulkfetch) or 200 (Data Center search), one
        PUT per edited issue, one rank PUT per 50 issues of a move."""
        keys = {w.item_key for w in plan.writes} | {k for m in plan.moves for k in m.item_keys}
        per_read = 100 if self.sandbox.flavour == "cloud" else 200
        edits = len({w.item_key for w in plan.writes})
        ranks = sum(math.ceil(len(move.item_keys) / 50) for move in plan.moves)
        return math.ceil(len(keys) / per_read) + edits + ranks


class AzureDevOpsKit(TrackerKit):
    okr_link_type = "Related"
    kind = "azure-devops"
    incremental_requests = 3  # resource-location discovery, one WIQL query, one batch read
    score_field = "Custom.WSJFScore"
    rank_field = "Microsoft.VSTS.Common.StackRank"

    def __init__(self, sandbox: AzureDevOpsSandbox, clock: SandboxClock) -> None:
        self.sandbox: AzureDevOpsSandbox = sandbox
        self.name = "contract-azure-devops"
        self.seeds = _portfolio("azure_devops")
        self.clock = clock
        self.levels = dict(self.settings().levels)

    def settings(self, **overrides: Any) -> AzureDevOpsSettings:
        values: dict[str, Any] = {
            "kind": "azure_devops",
            "name": self.name,
            "url": self.sandbox.organization_url,
            "project": self.sandbox.project,
            "auth": {"token_env": "ADO_PAT"},
            "wsjf_fields": {
                "risk_reduction": "Risk Reduction | Opportunity Enablement",
                "score": "WSJF Score",
                "cost_of_delay": "Cost of Delay",
            },
            "workers": 4,
            "retry": FAST_RETRY,
        }
        values.update(overrides)
        return AzureDevOpsSettings.model_validate(values)

    def connector(
        self, sleep: RecordedSleep | None = None, secret: str | None = None, **overrides: Any
    ) -> AzureDevOpsConnector:
        sleep = sleep or RecordedSleep()
        return AzureDevOpsConnector(
            self.settings(**overrides),
            environ={"ADO_PAT": self.sandbox.pat if secret is None else secret},
            sleep=sleep,
            clock=sleep.monotonic,
            cache_dir=None,
        )

    def unknown_field(self) -> tuple[dict[str, Any], str]:
        names = {"risk_reduction": "Risk Reduction | Opportunity Enablement", "job_size": "Efort"}
        return {"wsjf_fields": names}, "wsjf_fields.job_size"

    def human_edit(self, key: str) -> None:
        self.clock.advance(1)
        self.sandbox.touch(int(key), **{"System.Title": f"{key} retitled by a person"})

    def edit_after_next_read(self, key: str) -> None:
        self.sandbox.change_on_read.add(int(key))

    def delete(self, key: str) -> None:
        self.sandbox.delete(int(key))

    def stored_title(self, key: str) -> str:
        return str(self.sandbox.work_item(int(key))["fields"]["System.Title"])

    def stored_score(self, key: str) -> float | None:
        value = self.sandbox.work_item(int(key))["fields"].get(self.score_field)
        return None if value is None else float(value)

    def score_writes(self) -> list[str]:
        return [write.key for write in self.sandbox.writes if write.field == self.score_field]

    def rank_writes(self) -> list[str]:
        return [write.key for write in self.sandbox.writes if write.field == self.rank_field]

    def push_bound(self, plan: ConnectionPlan) -> int:
        """200 items to a `$batch` request (rank values are field writes on a numeric-rank
        tracker); a lone item is one PATCH."""
        return math.ceil(len({write.item_key for write in plan.writes}) / 200)


@contextmanager
def running(kind: Kind) -> Iterator[TrackerKit]:
    """The tracker `kind` serving its seeded portfolio on 127.0.0.1 until the block ends."""
    clock = SandboxClock()
    if kind == "azure-devops":
        with AzureDevOpsSandbox(_portfolio("azure_devops"), clock=clock) as ado:
            yield AzureDevOpsKit(ado, clock)
        return
    flavour: Literal["cloud", "datacenter"] = "cloud" if kind == "jira-cloud" else "datacenter"
    with JiraSandbox(_portfolio("jira"), flavour=flavour, clock=clock) as jira:
        yield JiraKit(jira, clock)
