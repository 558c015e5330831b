"""The alignment engine's parameters and the small matchers built from them.

The pipeline fills these frozen dataclasses from the YAML config; they hold only strings,
tuples and domain enums so that mapping is a one-liner per field.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from spm_sync.core.domain import KeyResult, Level, StatusCategory, WorkItem

DEFAULT_LABEL_PREFIX = "kr-"


@dataclass(frozen=True, slots=True)
class ConnectionAlignment:
    """How one connection marks alignment.

    `link_types`: issue link / relation type names that count as "this item moves that Key
    Result" (e.g. "drives", "relates to", "System.LinkTypes.Related"); compared
    case-insensitively, in both directions. Empty means links never align (an explicit list
    avoids counting a "blocks" or "duplicates" link as strategy).
    `key_result_types`: tracker item types that stand for a Key Result (e.g. "Key Result").
    """

    connection: str
    label_prefix: str = DEFAULT_LABEL_PREFIX
    link_types: tuple[str, ...] = ()
    key_result_types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.label_prefix.strip():
            raise ValueError(f"{self.connection}: the label prefix must not be empty")


@dataclass(frozen=True, slots=True)
class KeyResultRule:
    """Config rule: every item matching all given conditions moves `key_result`.

    `project` and `team` match a path prefix by segment, so "Contoso\\Payments" matches the
    Azure DevOps area path "Contoso\\Payments\\Checkout" but not "Contoso\\PaymentsOps"; a Jira
    project key or team name is a one-segment path and so matches exactly. `project` is checked
    against the item's project and its area path (Azure DevOps items keep the team project in
    `project` and the area path in `team`), so an area path works there too. `component`
    matches any of the item's components. All comparisons ignore case. `connection` limits the
    rule to one connection.
    """

    key_result: str
    project: str | None = None
    team: str | None = None
    component: str | None = None
    connection: str | None = None

    def __post_init__(self) -> None:
        if self.project is None and self.team is None and self.component is None:
            raise ValueError(
                f"rule for key result {self.key_result!r} needs a project, team or component"
            )

    def describe(self) -> str:
        conditions = [
            f"{name} {value}"
            for name, value in (
                ("project", self.project),
                ("team", self.team),
                ("component", self.component),
            )
            if value is not None
        ]
        return "rule " + ", ".join(conditions)

    def matches(self, item: WorkItem) -> bool:
        if self.connection is not None and self.connection != item.connection:
            return False
        if self.project is not None and not (
            path_has_prefix(item.project, self.project) or path_has_prefix(item.team, self.project)
        ):
            return False
        if self.team is not None and not path_has_prefix(item.team, self.team):
            return False
        if self.component is not None:
            wanted = self.component.casefold()
            if not any(component.casefold() == wanted for component in item.components):
                return False
        return True


@dataclass(frozen=True, slots=True)
class AlignmentScope:
    """Which items are checked for orphans. Done work is not flagged by default."""

    levels: tuple[Level, ...] = (Level.INITIATIVE, Level.EPIC, Level.FEATURE, Level.STORY)
    status_categories: tuple[StatusCategory, ...] = (
        StatusCategory.TODO,
        StatusCategory.IN_PROGRESS,
    )


@dataclass(frozen=True, slots=True)
class AlignmentRules:
    """Everything the alignment engine is told.

    `register_tracker_key_results`: a tracker item of a Key Result type whose key is not in the
    OKR set is always reported as a warning; when True (the default) it is also registered as a
    Key Result under a synthetic objective per connection, so work linked to it counts as
    aligned and the KR shows up in coverage. The item's type says it is a Key Result, and hiding
    that work as orphans would punish teams for a gap in the OKR file.
    `ignored_labels`: labels that are never read as Key Result names (e.g. the orphan label the
    write-back adds, should it start with the prefix).
    """

    connections: tuple[ConnectionAlignment, ...] = ()
    rules: tuple[KeyResultRule, ...] = ()
    scope: AlignmentScope = AlignmentScope()
    register_tracker_key_results: bool = True
    ignored_labels: tuple[str, ...] = ()

    def for_connection(self, connection: str) -> ConnectionAlignment:
        for settings in self.connections:
            if settings.connection == connection:
                return settings
        return ConnectionAlignment(connection)


def path_has_prefix(value: str | None, prefix: str) -> bool:
    """True when `prefix` is `value` or one of its ancestors in a `\\`- or `/`-separated path."""
    if value is None:
        return False
    value_parts = path_parts(value)
    prefix_parts = path_parts(prefix)
    return bool(prefix_parts) and value_parts[: len(prefix_parts)] == prefix_parts


@lru_cache(maxsize=65536)
def path_parts(path: str) -> tuple[str, ...]:
    """Path segments, case-folded; cached because a backlog repeats a few hundred paths."""
    return tuple(part.strip().casefold() for part in path.replace("/", "\\").split("\\") if part)


class KeyResultNames:
    """Case-insensitive lookup of Key Result ids and aliases. Ids win over aliases."""

    def __init__(self, key_results: Iterable[KeyResult]) -> None:
        self.by_id: dict[str, KeyResult] = {}
        self._names: dict[str, str] = {}
        self.conflicts: list[str] = []
        key_results = list(key_results)
        for key_result in key_results:
            self.by_id[key_result.id] = key_result
            self._names.setdefault(key_result.id.casefold(), key_result.id)
        for key_result in key_results:
            for alias in key_result.aliases:
                owner = self._names.setdefault(alias.casefold(), key_result.id)
                if owner != key_result.id:
                    self.conflicts.append(
                        f"alias {alias!r} of key result {key_result.id} already names {owner}; "
                        f"it keeps pointing at {owner}"
                    )

    def resolve(self, name: str) -> str | None:
        return self._names.get(name.casefold())

    def register(self, key_result: KeyResult, name: str) -> None:
        self.by_id[key_result.id] = key_result
        self._names.setdefault(name.casefold(), key_result.id)
        self._names.setdefault(key_result.id.casefold(), key_result.id)
