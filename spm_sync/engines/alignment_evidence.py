"""The facts the alignment engine reads off each item: Key Result items, label, link and rule
evidence, and the walk up the parent chain.

Kept apart from `alignment` so each module has one job: this one indexes (items by key, Key
Result items, reverse links) and walks; `alignment` turns the facts into results and reasons.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from enum import StrEnum
from typing import Literal, NamedTuple

from spm_sync.core.domain import ItemRef, KeyResult, Objective, WorkItem
from spm_sync.engines.alignment_rules import AlignmentRules, KeyResultNames, KeyResultRule

"""(connection, key): keys are unique only within a connection."""


class Via(StrEnum):
    """How an alignment was found, in priority order (see `spm_sync.engines.alignment`)."""

    LABEL = "label"
    LINK = "link"
    RULE = "rule"
    PARENT = "parent"


EvidenceRow = tuple[str, Via, tuple[str, ...], str]
"""(kr_id, via, path, detail) of one piece of an item's own evidence."""

MAX_KEYS_IN_WARNING = 5


def keys_for_warning(keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_KEYS_IN_WARNING])
    more = len(keys) - MAX_KEYS_IN_WARNING
    return f"{shown} and {more} more" if more > 0 else shown


class Evidence:
    """Own evidence of every item (label, link, rule) and the Key Result items.

    `key_result_items` maps the items that stand for a Key Result (a configured Key Result type,
    or a key that is a Key Result id/alias) to its id; they are the targets of OKR links, anchors
    for their children, and never work items themselves (not orphans, not coverage).

    `context`: the refs of context items (outside the scope, stored only to be followed, see
    `spm_sync.pipeline.context_pull`). They give evidence and stand for Key Results like any item,
    so alignment comes out as with a scope that holds them; only their unknown labels raise no
    warning (they are not the user's work in scope).
    """

    def __init__(
        self,
        items: Mapping[ItemRef, WorkItem],
        names: KeyResultNames,
        rules: AlignmentRules,
        context: frozenset[ItemRef] = frozenset(),
    ) -> None:
        self.items = items
        self.context = context
        self.names = names
        self.rules = rules
        self.warnings: list[str] = list(names.conflicts)
        self.key_result_items: dict[ItemRef, str] = {}
        self.synthetic_objectives: list[Objective] = []
        self.own: dict[ItemRef, list[EvidenceRow]] = {}
        self.unknown_labels: dict[ItemRef, list[str]] = {}
        self.dead_end_links: dict[ItemRef, list[str]] = {}
        self._registered_from: dict[str, str] = {}
        self.inherited_by_anchor: dict[ItemRef, list[tuple[str, str]]] = {}
        self._find_key_result_items()
        self._reverse = self._reverse_links()
        self._rules = self._known_rules()
        self._collect_own_evidence()
        self.anchors: set[ItemRef] = set(self.own) | set(self.key_result_items)

    def inheritance(self, anchor: ItemRef) -> list[tuple[str, str]]:
        """(kr_id, detail) that the descendants of the aligned item `anchor` inherit."""
        inherited = self.inherited_by_anchor.get(anchor)
        if inherited is None:
            kr_id = self.key_result_items.get(anchor)
            if kr_id is not None:
                inherited = [(kr_id, f"inherited from key result item {anchor[1]}")]
            else:
                inherited = [
                    (kr_id, f"inherited from {anchor[1]} ({via.value} {detail})")
                    for kr_id, via, _, detail in self.own[anchor]
                ]
            self.inherited_by_anchor[anchor] = inherited
        return inherited

    def _find_key_result_items(self) -> None:
        types = {
            settings.connection: {name.casefold() for name in settings.key_result_types}
            for settings in self.rules.connections
        }
        resolve = self.names.resolve
        for ref, item in self.items.items():
            kr_id = resolve(item.key)
            typed = types.get(ref[0])
            is_typed = typed is not None and item.type.casefold() in typed
            if is_typed and (kr_id is None or self._registered_elsewhere(kr_id, item)):
                kr_id = self._unknown_key_result_item(item)
            if kr_id is not None:
                self.key_result_items[ref] = kr_id

    def _registered_elsewhere(self, kr_id: str, item: WorkItem) -> bool:
        return self._registered_from.get(kr_id, item.connection) != item.connection

    def _unknown_key_result_item(self, item: WorkItem) -> str | None:
        where = f"{item.connection}: {item.key} (type {item.type!r}) is not in the OKR set"
        if not self.rules.register_tracker_key_results:
            self.warnings.append(f"{where}; links to it and its children do not count")
            return None
        objective_id = f"unlisted:{item.connection}"
        if not any(objective.id == objective_id for objective in self.synthetic_objectives):
            self.synthetic_objectives.append(
                Objective(objective_id, f"Key results in {item.connection} not in the OKR file")
            )
        kr_id = item.key
        if kr_id in self.names.by_id:
            kr_id = f"{item.connection}:{item.key}"
        self.names.register(KeyResult(kr_id, objective_id, item.title), item.key)
        self._registered_from[kr_id] = item.connection
        self.warnings.append(f"{where}; registered as key result {kr_id} under {objective_id}")
        return kr_id

    def _link_types(self, connection: str) -> frozenset[str]:
        settings = self.rules.for_connection(connection)
        return frozenset(name.casefold() for name in settings.link_types)

    def _reverse_links(self) -> dict[ItemRef, list[tuple[str, str, str]]]:
        """Target item → (kr_id, Key Result item key, link type) for links a KR item carries."""
        reverse: dict[ItemRef, list[tuple[str, str, str]]] = defaultdict(list)
        for ref, kr_id in self.key_result_items.items():
            link_types = self._link_types(ref[0])
            for link in self.items[ref].links:
                if link.type.casefold() in link_types:
                    reverse[(ref[0], link.target_key)].append((kr_id, ref[1], link.type))
        return reverse

    def _known_rules(self) -> list[tuple[str, KeyResultRule]]:
        known: list[tuple[str, KeyResultRule]] = []
        for rule in self.rules.rules:
            kr_id = self.names.resolve(rule.key_result)
            if kr_id is None:
                self.warnings.append(
                    f"{rule.describe()} names key result {rule.key_result!r}, "
                    "which is not in the OKR set; the rule is ignored"
                )
            else:
                known.append((kr_id, rule))
        return known

    def _collect_own_evidence(self) -> None:
        ignored = {label.casefold() for label in self.rules.ignored_labels}
        per_connection: dict[str, tuple[str, frozenset[str]]] = {}
        unknown_by_label: dict[tuple[str, str], tuple[str, list[str]]] = {}
        reverse = self._reverse
        for ref, item in self.items.items():
            if ref in self.key_result_items:
                continue
            settings = per_connection.get(ref[0])
            if settings is None:
                prefix = self.rules.for_connection(ref[0]).label_prefix.casefold()
                settings = per_connection[ref[0]] = (prefix, self._link_types(ref[0]))
            found: dict[str, EvidenceRow] = {}
            if item.labels:
                unknown = {} if ref in self.context else unknown_by_label
                self._label_evidence(item, settings[0], ignored, found, unknown)
            if item.links or ref in reverse:
                self._link_evidence(item, settings[1], found)
            if not found:
                for kr_id, rule in self._rules:
                    if rule.matches(item):
                        found.setdefault(kr_id, (kr_id, Via.RULE, (item.key,), rule.describe()))
            if found:
                self.own[ref] = list(found.values())
        for (connection, _), (label, keys) in unknown_by_label.items():
            self.warnings.append(
                f"{connection}: label {label!r} names no known key result "
                f"(on {keys_for_warning(keys)})"
            )

    def _label_evidence(
        self,
        item: WorkItem,
        prefix: str,
        ignored: set[str],
        found: dict[str, EvidenceRow],
        unknown_by_label: dict[tuple[str, str], tuple[str, list[str]]],
    ) -> None:
        for label in item.labels:
            folded = label.casefold()
            if not folded.startswith(prefix) or folded in ignored:
                continue
            name = label[len(prefix) :]
            kr_id = (self.names.resolve(name) if name else None) or self.names.resolve(label)
            if kr_id is not None:
                found.setdefault(kr_id, (kr_id, Via.LABEL, (item.key,), label))
                continue
            self.unknown_labels.setdefault((item.connection, item.key), []).append(label)
            entry = unknown_by_label.setdefault((item.connection, folded), (label, []))
            entry[1].append(item.key)

    def _link_evidence(
        self, item: WorkItem, link_types: frozenset[str], found: dict[str, EvidenceRow]
    ) -> None:
        if not link_types:
            return
        connection = item.connection
        dead_ends: list[str] = []
        for link in item.links:
            if link.type.casefold() not in link_types:
                continue
            target = (connection, link.target_key)
            if target in self.items:
                kr_id = self.key_result_items.get(target)
            else:  # not pulled: trust the OKR file's ids and aliases
                kr_id = self.names.resolve(link.target_key)
            if kr_id is not None:
                found.setdefault(kr_id, (kr_id, Via.LINK, (item.key, link.target_key), link.type))
            elif link.target_key not in dead_ends:
                dead_ends.append(link.target_key)
        for kr_id, kr_key, link_type in self._reverse.get((connection, item.key), ()):
            found.setdefault(kr_id, (kr_id, Via.LINK, (item.key, kr_key), link_type))
        if dead_ends:
            self.dead_end_links[(connection, item.key)] = dead_ends


Path = tuple[str, ...]
"""Keys from an item up to its nearest aligned ancestor, both included (same connection)."""


class Stop(NamedTuple):
    """The walk ended unaligned: at a `top` item with no parent, at a `missing` parent (not
    pulled), or on a `cycle`; `key` is that top item, missing parent or cycle entry."""

    kind: Literal["top", "missing", "cycle"]
    key: str


class ParentWalk:
    """Memoised, iterative walk up parent chains to the nearest anchor (aligned item).

    Each item's outcome (a `Path` or a `Stop`) is computed once; a walk stops at the first item
    whose outcome is known, so the total work is linear in the number of items plus the length
    of the paths it builds. Parents are looked up in the item's own connection.
    """

    def __init__(self, items: Mapping[ItemRef, WorkItem], anchors: set[ItemRef]) -> None:
        self.items = items
        self.anchors = anchors
        self.outcomes: dict[ItemRef, Path | Stop] = {}
        self.warnings: list[str] = []

    def outcome(self, start: ItemRef) -> Path | Stop:
        """Where the walk up from `start` (an item without evidence of its own) ends."""
        outcomes = self.outcomes
        known = outcomes.get(start)
        if known is not None:
            return known
        items, anchors = self.items, self.anchors
        connection = start[0]
        chain: list[ItemRef] = []
        on_chain: set[ItemRef] = set()
        ref = start
        outcome: Path | Stop
        while True:
            chain.append(ref)
            on_chain.add(ref)
            parent_key = items[ref].parent_key
            if parent_key is None:
                outcome = Stop("top", ref[1])
                break
            parent = (connection, parent_key)
            if parent in anchors:
                outcome = (parent_key,)
                break
            known = outcomes.get(parent)
            if known is not None:
                outcome = known
                break
            if parent not in items:
                outcome = Stop("missing", parent_key)
                break
            if parent in on_chain:
                outcome = Stop("cycle", parent_key)
                self._cycle_warning(chain, parent)
                break
            ref = parent
        if type(outcome) is tuple:
            for ref in reversed(chain):
                outcome = outcomes[ref] = (ref[1], *outcome)
        else:
            for ref in chain:
                outcomes[ref] = outcome
        return outcome

    def _cycle_warning(self, chain: list[ItemRef], entry: ItemRef) -> None:
        members = [ref[1] for ref in chain[chain.index(entry) :]]
        loop = " → ".join([*members, entry[1]])
        self.warnings.append(
            f"{entry[0]}: parent cycle {loop}; these items and their children stay unaligned "
            "unless they carry their own evidence"
        )
