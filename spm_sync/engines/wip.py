"""The portfolio Kanban of the report: items per status category of each team, against the
configured WIP limits (`wip_limits` in the config, handed in as `TeamLimit`s)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from typing import Protocol

from spm_sync.core.domain import Level, StatusCategory, WorkItem
from spm_sync.core.results import WipLane
from spm_sync.engines.alignment_rules import path_has_prefix, path_parts

WIP_LEVELS = (Level.EPIC, Level.FEATURE)
"""Levels of the portfolio Kanban when no WIP limit says otherwise."""


class TeamLimit(Protocol):
    """One WIP limit: at most `limit` of the team's items at `levels` in `status_category`
    (the config's `wip_limits` entries have this shape)."""

    @property
    def team(self) -> str: ...
    @property
    def levels(self) -> Collection[Level]: ...
    @property
    def status_category(self) -> StatusCategory: ...
    @property
    def limit(self) -> int: ...


def team_matches(item: WorkItem, team: str) -> bool:
    """A WIP limit's team names the item's team (Jira: its project), an ancestor of its area
    path, or one segment of that path ("Payments" matches "Portfolio\\Payments\\Falcon")."""
    wanted = team.strip().casefold()
    for value in (item.team, item.project):
        if value is not None and (wanted in path_parts(value) or path_has_prefix(value, team)):
            return True
    return False


def wip_lanes(wip_limits: Sequence[TeamLimit], items: Iterable[WorkItem]) -> list[WipLane]:
    """One lane per team with a WIP limit; without limits, one per team at epic/feature level."""
    items = list(items)
    if not wip_limits:
        return _unlimited_lanes(items)
    teams: dict[str, str] = {}
    for limit in wip_limits:
        teams.setdefault(limit.team.casefold(), limit.team)
    lanes = []
    for folded, team in teams.items():
        limits = [limit for limit in wip_limits if limit.team.casefold() == folded]
        levels = {level for limit in limits for level in limit.levels}
        matching = [i for i in items if i.level in levels and team_matches(i, team)]
        connections = {item.connection for item in matching}
        lanes.append(
            WipLane(
                team=team,
                connection=connections.pop() if len(connections) == 1 else None,
                counts=_counts(matching),
                limits={limit.status_category: limit.limit for limit in limits},
            )
        )
    return lanes


def _unlimited_lanes(items: Sequence[WorkItem]) -> list[WipLane]:
    grouped: dict[tuple[str, str], list[WorkItem]] = defaultdict(list)
    for item in items:
        if item.level in WIP_LEVELS and item.team:
            grouped[(item.connection, item.team)].append(item)
    return [
        WipLane(team=team, connection=connection, counts=_counts(members))
        for (connection, team), members in sorted(grouped.items())
    ]


def _counts(items: Iterable[WorkItem]) -> dict[StatusCategory, int]:
    counts = dict.fromkeys(StatusCategory, 0)
    for item in items:
        counts[item.status_category] += 1
    return counts
