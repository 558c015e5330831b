"""Compact in-memory issue storage for the Jira sandbox, with the indexes search needs.

Issues are slotted records with timestamps as epoch milliseconds; JSON is built per request
(`jira_render`), so 50,000 issues cost tens of MB, not hundreds. Indexes: key, id, project,
`updated` (sorted lazily), the global rank order and issue links both ways. `version` grows on
every change so searches can cache their result lists until something changes.
"""

from __future__ import annotations

import bisect
import random
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise

from connectors.sandbox import lexorank
from connectors.sandbox.jira_fields import DEFAULT_PRIORITY, ISSUE_TYPES, LINK_TYPES
from connectors.sandbox.portfolio import RawValue, SeedItem
from connectors.sandbox.wordlists import JIRA_PROJECTS

KEY_PATTERN = re.compile(r"^([A-Z][A-Z0-9_]*)-([1-9][0-9]*)$")
PROJECT_NAMES = {**dict(JIRA_PROJECTS), "OKR": "Objectives and Key Results"}
KNOWN_STATUS_IDS = {
    "To Do": "10000", "Done": "10001", "In Progress": "3", "Backlog": "10002",
    "Selected for Development": "10003", "In Review": "10004",
}  # fmt: skip
SEEDED_IDS_PER_ISSUE = 1024
"""Seeded changelog ids are `issue id × 1024 + n` (`jira_history`)."""
RANK_SHUFFLE_SEED = 20240601  # the initial backlog order is a fixed shuffle, not creation order


def to_millis(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {moment!r} has no time zone")
    return int(moment.timestamp() * 1000)


@dataclass(slots=True, eq=False)
class StoredIssue:
    id: int
    key: str
    project: str
    number: int
    type: str
    summary: str
    status: str
    status_category: str
    created: int
    updated: int
    parent: str | None
    labels: tuple[str, ...]
    components: tuple[str, ...]
    team: str | None
    rank: str
    priority: str = DEFAULT_PRIORITY
    description: str | None = None
    values: dict[str, RawValue] = field(default_factory=dict)
    settled: int = 0
    """`updated` as seeded: where the seeded status history ends (`jira_history`)."""
    history: tuple[tuple[int, int, str, str, str], ...] | None = None
    """Changes once one was made here (`jira_history.HistoryEntry`); None: the seeded
    history, derived when read."""


def _seed_history(seed: SeedItem) -> tuple[tuple[int, int, str, str, str], ...] | None:
    """A seed's own `status_history` as changes; None when it has none (the sandbox derives
    one, see `jira_history`)."""
    if not seed.status_history:
        return None
    if len(seed.status_history) > SEEDED_IDS_PER_ISSUE:
        raise ValueError(f"{seed.key}: more than {SEEDED_IDS_PER_ISSUE} status changes")
    return tuple(
        (seed.id * SEEDED_IDS_PER_ISSUE + n, to_millis(when), before, after, "status")
        for n, ((_, before), (when, after)) in enumerate(pairwise(seed.status_history))
        if before != after
    )


@dataclass(frozen=True, slots=True)
class StoredLink:
    """`outward` is the source ("PAY-1 drives OKR-3": PAY-1), `inward` the target."""

    id: int
    type: str
    outward: int
    inward: int


@dataclass(frozen=True, slots=True)
class ProjectInfo:
    id: int
    key: str
    name: str


class IssueStore:
    """All issues of one sandbox. Not thread-safe by itself: the server holds its lock."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.by_id: dict[int, StoredIssue] = {}
        self.by_key: dict[str, StoredIssue] = {}
        self.by_project: dict[str, dict[int, None]] = {}
        self.projects: dict[str, ProjectInfo] = {}
        self.links: dict[int, StoredLink] = {}
        self.links_of: dict[int, list[int]] = {}
        self.link_types: dict[str, tuple[str, str, str]] = dict(LINK_TYPES)
        self.issue_types: dict[str, tuple[int, int, bool]] = dict(ISSUE_TYPES)
        self.statuses: dict[str, tuple[str, str]] = {}
        self.ranks = lexorank.RankOrder()
        self.hidden: set[int] = set()
        self.option_ids: dict[str, int] = {}  # "Team" select options
        self.component_ids: dict[str, int] = {}
        self.version = 0
        self.changelog_ids = 0  # status changes made since loading (`jira_history`)
        self.former_keys: dict[str, int] = {}  # keys of moved issues -> issue id
        self._updated_index: list[tuple[int, int]] | None = None

    # -- loading ---------------------------------------------------------------------------
    def load(self, seeds: Iterable[SeedItem]) -> None:
        pending_links: list[tuple[int, str, str]] = []
        for seed in seeds:
            issue = self._issue_from_seed(seed)
            self._register(issue)
            pending_links.extend((issue.id, link.type, link.target) for link in seed.links)
        next_link_id = 10000
        for source, type_, target_key in pending_links:
            target = self.by_key.get(target_key.upper())
            if target is None:
                continue  # a dangling link (to another tracker or a deleted issue)
            self.link_types.setdefault(type_, (str(10000 + len(self.link_types)), type_, type_))
            self.add_link(StoredLink(next_link_id, type_, source, target.id))
            next_link_id += 1
        self._assign_missing_ranks()
        for name in sorted({i.team for i in self.by_id.values() if i.team}):
            self.option_id(name)
        for name in sorted({c for i in self.by_id.values() for c in i.components}):
            self.component_id(name)
        self.changed()

    def _issue_from_seed(self, seed: SeedItem) -> StoredIssue:
        if seed.tracker != "jira":
            raise ValueError(f"item {seed.key} belongs to {seed.tracker}, not Jira")
        match = KEY_PATTERN.match(seed.key)
        if match is None:
            raise ValueError(f"{seed.key!r} is not a Jira issue key (like PAY-12)")
        if seed.key in self.by_key or seed.id in self.by_id:
            raise ValueError(f"duplicate issue {seed.key} / id {seed.id}")
        values: dict[str, RawValue] = {}
        for slot in ("business_value", "time_criticality", "job_size"):
            raw = getattr(seed, slot)
            if raw is not None:
                values[slot] = float(raw) if isinstance(raw, int | float) else raw
        if seed.risk_reduction is not None:
            raw = seed.risk_reduction
            values["risk_reduction"] = f"{raw:g}" if isinstance(raw, int | float) else str(raw)
        return StoredIssue(
            id=seed.id, key=seed.key, project=match.group(1), number=int(match.group(2)),
            type=seed.type, summary=seed.title, status=seed.status,
            status_category=seed.status_category, created=to_millis(seed.created),
            updated=to_millis(seed.updated), parent=seed.parent, labels=tuple(seed.labels),
            components=tuple(seed.components), team=seed.team,
            rank=seed.rank if isinstance(seed.rank, str) else "", values=values,
            settled=to_millis(seed.updated), history=_seed_history(seed),
        )  # fmt: skip

    def _register(self, issue: StoredIssue) -> None:
        self.by_id[issue.id] = issue
        self.by_key[issue.key] = issue
        if issue.project not in self.projects:
            name = PROJECT_NAMES.get(issue.project, issue.project.title())
            self.projects[issue.project] = ProjectInfo(0, issue.project, name)
            ordered = sorted(self.projects)
            self.projects = {
                key: ProjectInfo(10000 + n, key, self.projects[key].name)
                for n, key in enumerate(ordered)
            }
        self.by_project.setdefault(issue.project, {})[issue.id] = None
        self.add_issue_type(issue.type)
        self.add_status(issue.status, issue.status_category)

    def add_issue_type(self, name: str) -> None:
        """Make an issue type known to the site (a standard type at level 0) unless it is."""
        if name not in self.issue_types:
            self.issue_types[name] = (10100 + len(self.issue_types), 0, False)

    def add_status(self, name: str, category: str) -> None:
        """Make a status known to the site, in `category`, unless it is."""
        if name not in self.statuses:
            status_id = KNOWN_STATUS_IDS.get(name, str(10100 + len(self.statuses)))
            self.statuses[name] = (status_id, category)

    def _assign_missing_ranks(self) -> None:
        ranked = [issue for issue in self.by_id.values() if issue.rank]
        unranked = [issue for issue in self.by_id.values() if not issue.rank]
        random.Random(RANK_SHUFFLE_SEED).shuffle(unranked)
        if ranked:
            top = max(issue.rank for issue in ranked)
            fresh = lexorank.between(top, None, len(unranked)) if unranked else []
        else:
            fresh = lexorank.evenly_spaced(len(unranked))
        for issue, rank in zip(unranked, fresh, strict=True):
            issue.rank = rank
        self.ranks.load((issue.rank, issue.id) for issue in self.by_id.values())

    # -- lookups ---------------------------------------------------------------------------
    def find(self, key_or_id: str) -> StoredIssue | None:
        """A visible issue by key (case-insensitive, as Jira retries) or numeric id."""
        text = key_or_id.strip()
        if text.isdigit():
            issue = self.by_id.get(int(text))
        else:
            issue = self.by_key.get(text.upper())
            if issue is None and text.upper() in self.former_keys:
                issue = self.by_id.get(self.former_keys[text.upper()])  # Jira follows moves
        if issue is None or issue.id in self.hidden:
            return None
        return issue

    def visible(self) -> Iterator[StoredIssue]:
        hidden = self.hidden
        return (issue for issue in self.by_id.values() if issue.id not in hidden)

    def ids_updated_since(self, millis: int) -> list[int]:
        """Ids of issues updated at or after `millis` (from the lazily sorted index)."""
        if self._updated_index is None:
            self._updated_index = sorted((i.updated, i.id) for i in self.by_id.values())
        start = bisect.bisect_left(self._updated_index, (millis, -1))
        return [issue_id for _, issue_id in self._updated_index[start:]]

    def links_for(self, issue: StoredIssue) -> list[StoredLink]:
        return [self.links[link_id] for link_id in self.links_of.get(issue.id, ())]

    def is_subtask(self, issue: StoredIssue) -> bool:
        return self.issue_types.get(issue.type, (0, 0, False))[2]

    def parent_field(self, issue: StoredIssue, parent: StoredIssue) -> str:
        """Which Data Center field carries this parent: "parent" (sub-tasks), "epic_link"
        (the epic of a story) or "parent_link" (Advanced Roadmaps, above epics)."""
        if self.is_subtask(issue):
            return "parent"
        return "epic_link" if parent.type == "Epic" else "parent_link"

    def option_id(self, value: str) -> int:
        return self.option_ids.setdefault(value, 10100 + len(self.option_ids))

    def component_id(self, name: str) -> int:
        return self.component_ids.setdefault(name, 10000 + len(self.component_ids))

    def now_millis(self) -> int:
        return to_millis(self.clock())

    # -- changes ---------------------------------------------------------------------------
    def changed(self) -> None:
        self.version += 1
        self._updated_index = None

    def bump(self, issue: StoredIssue) -> None:
        """Record an edit: `updated` moves to now, and always forward (ms precision)."""
        issue.updated = max(self.now_millis(), issue.updated + 1)
        self.changed()

    def add_link(self, link: StoredLink) -> None:
        self.links[link.id] = link
        self.links_of.setdefault(link.outward, []).append(link.id)
        if link.inward != link.outward:
            self.links_of.setdefault(link.inward, []).append(link.id)

    def rebalance_ranks(self) -> None:
        for issue_id, rank in self.ranks.rebalance().items():
            self.by_id[issue_id].rank = rank

    def rank_block(
        self, issues: list[StoredIssue], anchor: StoredIssue, before: bool
    ) -> list[tuple[StoredIssue, str]]:
        """Put `issues`, in this order, right before (or after) `anchor`.

        Only the moved issues get new ranks, taken from the gap next to the anchor; when the
        gap is used up the rest of the order is rebalanced first. Returns (issue, old rank).
        """
        for issue in issues:
            self.ranks.remove(issue.rank)
        try:
            fresh = self._ranks_next_to(anchor, before, len(issues))
        except lexorank.NoRoomError:
            self.rebalance_ranks()  # the moved issues are out of the order meanwhile
            fresh = self._ranks_next_to(anchor, before, len(issues))
        moved = []
        for issue, rank in zip(issues, fresh, strict=True):
            moved.append((issue, issue.rank))
            issue.rank = rank
            self.ranks.add(rank, issue.id)
        self.changed()
        return moved

    def _ranks_next_to(self, anchor: StoredIssue, before: bool, count: int) -> list[str]:
        below, above = self.ranks.neighbours(anchor.rank)
        if before:
            return lexorank.between(below, anchor.rank, count)
        return lexorank.between(anchor.rank, above, count)

    def move(self, issue: StoredIssue, project: str) -> str:
        """Move `issue` to `project` under the next free number there, as Jira does; its old
        key keeps finding it, and children naming it as parent follow. Returns the new key."""
        old_key = issue.key
        taken = [self.by_id[i].number for i in self.by_project.get(project, {})]
        prefix = f"{project}-"
        taken += [int(k[len(prefix) :]) for k in self.former_keys if k.startswith(prefix)]
        del self.by_key[old_key]
        del self.by_project[issue.project][issue.id]
        issue.project, issue.number = project, max(taken, default=0) + 1
        issue.key = f"{project}-{issue.number}"
        self.former_keys[old_key] = issue.id
        self._register(issue)
        for other in self.by_id.values():
            if other.parent == old_key:
                other.parent = issue.key
        self.changed()
        return issue.key

    def delete(self, issue: StoredIssue) -> None:
        del self.by_id[issue.id]
        del self.by_key[issue.key]
        del self.by_project[issue.project][issue.id]
        self.ranks.remove(issue.rank)
        self.hidden.discard(issue.id)
        for link_id in self.links_of.pop(issue.id, []):
            link = self.links.pop(link_id)
            other = link.inward if link.outward == issue.id else link.outward
            if other in self.links_of:
                self.links_of[other].remove(link_id)
        self.changed()
