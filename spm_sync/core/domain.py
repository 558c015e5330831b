"""Tracker-neutral domain types shared by every stage.

Connectors turn tracker JSON into `WorkItem`s; alignment, WSJF and planning read them; the
planner emits `PlannedWrite`s and `RankMove`s that connectors execute and answer with
`WriteResult`s (the audit log). Nothing here does I/O, so every stage can be tested on plain
values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import IntEnum, StrEnum
from typing import Literal


class Level(IntEnum):
    """Place in the portfolio hierarchy; higher is bigger. Ordered so both trackers compare."""

    TASK = 1
    STORY = 2
    FEATURE = 3
    EPIC = 4
    INITIATIVE = 5

    @classmethod
    def parse(cls, name: str) -> Level:
        return cls[name.strip().upper()]

    @property
    def label(self) -> str:
        return self.name.lower()


class StatusCategory(StrEnum):
    """The three buckets both trackers agree on (Jira statusCategory, ADO state category)."""

    TODO = "To Do"
    IN_PROGRESS = "In Progress"
    DONE = "Done"


ItemRef = tuple[str, str]
"""An item everywhere in the engines: (connection, key)."""

RankKind = Literal["lexorank", "numeric"]
"""How a tracker orders its backlog: Jira's LexoRank strings or Azure DevOps's numeric
stack rank; the planner moves items differently for each."""


WSJF_INPUTS: tuple[str, ...] = ("business_value", "time_criticality", "risk_reduction", "job_size")
"""Names of the WSJF inputs on `WorkItem`, also the keys of `WorkItem.field_problems`."""


@dataclass(frozen=True, slots=True)
class Link:
    """One issue link as the tracker states it, seen from the item that carries it.

    `type` is the tracker's own name ("relates to", "System.LinkTypes.Related"); `direction` is
    "outward" when this item is the link's source, "inward" when it is the target.
    """

    type: str
    direction: Literal["outward", "inward"]
    target_key: str


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One tracker item, normalized.

    `key` is unique within `connection` (Jira "PAY-7", Azure DevOps "4711"). `revision` is what a
    write must still find to be allowed (Jira: the `updated` timestamp string; Azure DevOps:
    `System.Rev`). WSJF inputs are None when the tracker has no value; when it has a value that is
    not a number, the input is None and `field_problems[input]` says why, so the item is reported
    instead of silently scored as zero.
    """

    connection: str
    key: str
    id: str
    type: str
    level: Level | None
    title: str
    status: str
    status_category: StatusCategory
    updated: datetime
    revision: str
    created: datetime | None = None
    parent_key: str | None = None
    labels: tuple[str, ...] = ()
    links: tuple[Link, ...] = ()
    project: str | None = None
    team: str | None = None
    components: tuple[str, ...] = ()
    url: str | None = None
    business_value: float | None = None
    time_criticality: float | None = None
    risk_reduction: float | None = None
    job_size: float | None = None
    # Current values of what spm-sync writes, so the planner writes only what changes.
    wsjf_score: float | None = None
    cost_of_delay: float | None = None
    priority: str | None = None
    rank: str | float | None = None
    field_problems: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Objective:
    """An objective; `target_date` is when its work should be done (the forecast's yardstick)."""

    id: str
    title: str
    owner: str | None = None
    period: str | None = None
    target_date: date | None = None


@dataclass(frozen=True, slots=True)
class KeyResult:
    """A Key Result. `aliases` are other names that point at it: label suffixes and the keys of
    tracker items that stand for it (e.g. a Jira issue of type "Key Result")."""

    id: str
    objective_id: str
    title: str
    target: float | None = None
    current: float | None = None
    baseline: float | None = None
    aliases: tuple[str, ...] = ()


class WriteField(StrEnum):
    """What spm-sync may write back. Each is switched on per connection in config."""

    WSJF_SCORE = "wsjf_score"
    COST_OF_DELAY = "cost_of_delay"
    PRIORITY = "priority"
    RANK = "rank"
    LABELS = "labels"


WriteValue = float | int | str | tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class PlannedWrite:
    """One field change, planned from a known revision.

    For `RANK` on a numeric-rank tracker (Azure DevOps) old/new are rank values; for a
    lexorank tracker (Jira) they are 1-based positions in the rank scope and the move itself is
    carried by a `RankMove`. For `LABELS` old/new are the complete label sets, sorted.
    """

    connection: str
    item_key: str
    field: WriteField
    old: WriteValue
    new: WriteValue
    expected_revision: str


@dataclass(frozen=True, slots=True)
class RankMove:
    """Put `item_keys`, in this order, directly after `after_key` (or before `before_key`).

    Moves are executed in the order the planner emits them; an anchor is always an item that
    does not move or that an earlier move already placed. `writes` holds one RANK audit row per
    moved item.
    """

    connection: str
    item_keys: tuple[str, ...]
    after_key: str | None
    before_key: str | None
    writes: tuple[PlannedWrite, ...]


@dataclass(frozen=True, slots=True)
class ConnectionPlan:
    """Everything to write to one connection: field writes first, then rank moves."""

    connection: str
    writes: tuple[PlannedWrite, ...] = ()
    moves: tuple[RankMove, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.writes and not self.moves


class WriteStatus(StrEnum):
    WRITTEN = "written"
    UNCHANGED = "unchanged"
    CONFLICT = "conflict"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The audit record of one planned write after the connector tried it."""

    write: PlannedWrite
    status: WriteStatus
    error: str | None = None
    new_revision: str | None = None
