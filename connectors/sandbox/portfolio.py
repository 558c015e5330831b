"""The seeded portfolio that the sandbox trackers serve: a tracker-neutral contract between the
generator and each sandbox server.

Values are kept as a tracker would hold them (native type, status and link-type names; WSJF
inputs as raw values that may be missing, zero or not numbers) so the sandboxes can serve them
verbatim and the connectors meet the same mess they meet in production.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Tracker = Literal["jira", "azure_devops"]
RawValue = float | int | str | None


@dataclass(frozen=True, slots=True)
class SeedLink:
    """An issue link stored on its source item: `type` is the tracker's link type name
    (Jira: "Drives", "Relates"; Azure DevOps: "System.LinkTypes.Related"), `target` a key."""

    type: str
    target: str


@dataclass(slots=True)
class SeedItem:
    """One item as a tracker stores it.

    `key` is the tracker's key: "PAY-12" in Jira, the decimal id in Azure DevOps. `project` is
    the Jira project key or the Azure DevOps area path. `rank` is assigned by the sandbox when
    None (lexorank string in Jira, StackRank float in Azure DevOps).
    """

    tracker: Tracker
    key: str
    id: int
    type: str
    title: str
    status: str
    status_category: Literal["To Do", "In Progress", "Done"]
    project: str
    created: datetime
    updated: datetime
    parent: str | None = None
    labels: list[str] = field(default_factory=list)
    links: list[SeedLink] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    team: str | None = None
    business_value: RawValue = None
    time_criticality: RawValue = None
    risk_reduction: RawValue = None
    job_size: RawValue = None
    rank: str | float | None = None
    status_history: list[tuple[datetime, str]] = field(default_factory=list)
    """(when, status) of each status the item entered, oldest first, the first at `created`
    and the last `status`; empty: the item kept the status it was created in."""


@dataclass(frozen=True, slots=True)
class SeedKeyResult:
    id: str
    objective_id: str
    title: str
    target: float | None = None
    current: float | None = None
    aliases: tuple[str, ...] = ()
    baseline: float | None = None


@dataclass(frozen=True, slots=True)
class SeedObjective:
    id: str
    title: str
    owner: str | None = None
    period: str | None = None


@dataclass(slots=True)
class SeedPortfolio:
    """Everything one seed produces: the OKRs and the items of each tracker."""

    seed: int
    objectives: list[SeedObjective]
    key_results: list[SeedKeyResult]
    jira: list[SeedItem]
    azure_devops: list[SeedItem]

    @property
    def size(self) -> int:
        return len(self.jira) + len(self.azure_devops)
