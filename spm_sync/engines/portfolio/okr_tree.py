"""One OKR tree from two sources: the OKR file and tracker items that stand for objectives and
Key Results.

Rules (the report quotes them):
- Ids match ignoring case, as in the OKR file (labels are matched that way too).
- The file wins: when the file and a tracker item state different values for the same field
  (title, kind, parent, target, baseline, current, weight, target date), the file's value is
  used and the disagreement is a conflict naming both sources. Between two tracker items the
  one whose source sorts first is used, and the other is a conflict just the same. A field one
  source leaves unset is filled from another, with that source recorded: filling a gap
  contradicts nothing. A record of the other kind (a Key Result where the file has an
  objective) is one conflict on the kind, and none of its fields is taken.
- Titles compare ignoring case and runs of white space; a tracker re-capitalising a title is
  not a conflict worth a reader's time.
- Objectives nest through their parent objective. A parent that is missing, or is a Key
  Result, puts the objective at the top with a problem. Objectives that are their own ancestor
  form a cycle: it is reported once with its chain, and each of its members is shown at the top
  (no order of the chain is more right than another).
- A Key Result hangs under its objective; one whose objective is missing (or is a Key Result)
  is an orphan Key Result, listed apart with the reason.
- Order: objects appear in the order of their first record, so the caller decides (the file's
  records first keeps the file's order).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum

FILE_SOURCE = "file"
MERGED_FIELDS: tuple[str, ...] = (
    "title",
    "kind",
    "parent_id",
    "target",
    "baseline",
    "current",
    "weight",
    "target_date",
)
"""The fields compared between sources, in the order conflicts are listed."""

OkrValue = str | float | date | None


class OkrKind(StrEnum):
    OBJECTIVE = "objective"
    KEY_RESULT = "key_result"


def tracker_source(connection: str, key: str) -> str:
    """The source of a record read from a tracker item: "tracker:<connection>/<key>"."""
    return f"tracker:{connection}/{key}"


@dataclass(frozen=True, slots=True)
class OkrRecord:
    """One objective or Key Result as one source states it.

    `parent_id` is the objective a Key Result belongs to, or the parent objective of an
    objective (None: a top objective). `source` is `FILE_SOURCE` or `tracker_source(...)`.
    """

    id: str
    title: str
    kind: OkrKind
    source: str
    parent_id: str | None = None
    target: float | None = None
    baseline: float | None = None
    current: float | None = None
    weight: float | None = None
    target_date: date | None = None

    @property
    def from_file(self) -> bool:
        return self.source == FILE_SOURCE


@dataclass(frozen=True, slots=True)
class OkrNode:
    """One merged objective or Key Result. `parent_id` is the parent as placed in the tree (the
    canonical id spelling; None at the top or for an orphan Key Result), `stated_parent_id` the
    one the sources gave. `sources` lists every record merged, the used one first;
    `filled_from` names the source of each field the used record left unset."""

    id: str
    title: str
    kind: OkrKind
    source: str
    sources: tuple[str, ...]
    parent_id: str | None = None
    stated_parent_id: str | None = None
    target: float | None = None
    baseline: float | None = None
    current: float | None = None
    weight: float | None = None
    target_date: date | None = None
    filled_from: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OkrConflict:
    """Two sources disagree on one field of one object; `used_value` is what the tree holds."""

    id: str
    field: str
    used_value: OkrValue
    used_source: str
    other_value: OkrValue
    other_source: str


@dataclass(frozen=True, slots=True)
class OkrProblem:
    """Something about one object the report must say; `chain` names a cycle's members in
    order, the first repeated at the end."""

    id: str
    reason: str
    chain: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OkrTree:
    """The merged tree. `objectives` and `key_results` map canonical ids to nodes (objectives in
    depth-first tree order); `children` and `key_results_of` map an objective id to the ids
    under it. Orphan Key Results are not in `key_results`."""

    objectives: Mapping[str, OkrNode]
    key_results: Mapping[str, OkrNode]
    roots: tuple[str, ...]
    children: Mapping[str, tuple[str, ...]]
    key_results_of: Mapping[str, tuple[str, ...]]
    orphan_key_results: tuple[OkrNode, ...] = ()
    conflicts: tuple[OkrConflict, ...] = ()
    problems: tuple[OkrProblem, ...] = ()

    def walk(self) -> Iterator[tuple[int, OkrNode]]:
        """(depth, objective) in depth-first order, roots at depth 0."""
        stack = [(0, root) for root in reversed(self.roots)]
        while stack:
            depth, objective_id = stack.pop()
            yield depth, self.objectives[objective_id]
            stack.extend((depth + 1, c) for c in reversed(self.children.get(objective_id, ())))


def merge_okrs(records: Iterable[OkrRecord]) -> OkrTree:
    """Merge the records into one tree; see the module docstring for the rules."""
    groups: dict[str, list[OkrRecord]] = {}
    for record in records:
        groups.setdefault(record.id.casefold(), []).append(record)
    conflicts: list[OkrConflict] = []
    merged: dict[str, OkrNode] = {}
    for group in groups.values():
        node, found = _merge_group(group)
        merged[node.id.casefold()] = node
        conflicts += found
    problems: list[OkrProblem] = []
    objectives = {k: n for k, n in merged.items() if n.kind is OkrKind.OBJECTIVE}
    parents = _objective_parents(objectives, merged, problems)
    for folded_cycle in _parent_cycles(parents):
        for member in folded_cycle[:-1]:
            parents[member] = None
        cycle = [objectives[member].id for member in folded_cycle]
        problems.append(
            OkrProblem(
                cycle[0],
                "objectives form a cycle through their parents ("
                + " → ".join(cycle)
                + "): each of them is shown at the top",
                tuple(cycle),
            )
        )
    placed, orphans = _place_key_results(merged, objectives, problems)
    return _tree(objectives, parents, placed, orphans, conflicts, problems)


def _merge_group(group: Sequence[OkrRecord]) -> tuple[OkrNode, list[OkrConflict]]:
    # The file first, then tracker sources in a fixed order: the result never depends on the
    # order the tracker returned its items in.
    ordered = sorted(group, key=lambda r: (not r.from_file, r.source))
    used = ordered[0]
    values: dict[str, OkrValue] = {name: getattr(used, name) for name in MERGED_FIELDS}
    provenance = dict.fromkeys(MERGED_FIELDS, used.source)
    filled: dict[str, str] = {}
    conflicts: list[OkrConflict] = []
    for other in ordered[1:]:
        if other.kind is not used.kind:
            # A parent or target means something else on the other kind: nothing to merge.
            conflicts.append(
                OkrConflict(used.id, "kind", used.kind, used.source, other.kind, other.source)
            )
            continue
        for name in MERGED_FIELDS:
            value = getattr(other, name)
            if value is None:
                continue
            if values[name] is None:
                values[name], provenance[name] = value, other.source
                filled[name] = other.source
            elif not _same(name, values[name], value):
                conflicts.append(
                    OkrConflict(used.id, name, values[name], provenance[name], value, other.source)
                )
    node = OkrNode(
        id=used.id,
        title=str(values["title"]),
        kind=OkrKind(str(values["kind"])),
        source=used.source,
        sources=tuple(dict.fromkeys(r.source for r in ordered)),
        stated_parent_id=_text(values["parent_id"]),
        target=_number(values["target"]),
        baseline=_number(values["baseline"]),
        current=_number(values["current"]),
        weight=_number(values["weight"]),
        target_date=values["target_date"] if isinstance(values["target_date"], date) else None,
        filled_from=filled,
    )
    return node, conflicts


def _same(name: str, used: OkrValue, other: OkrValue) -> bool:
    if name == "title" and isinstance(used, str) and isinstance(other, str):
        return " ".join(used.split()).casefold() == " ".join(other.split()).casefold()
    if name == "parent_id" and isinstance(used, str) and isinstance(other, str):
        return used.casefold() == other.casefold()
    return used == other


def _text(value: OkrValue) -> str | None:
    return value if isinstance(value, str) else None


def _number(value: OkrValue) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _objective_parents(
    objectives: Mapping[str, OkrNode], merged: Mapping[str, OkrNode], problems: list[OkrProblem]
) -> dict[str, str | None]:
    """Each objective's parent objective (folded ids); a bad parent is reported and dropped."""
    parents: dict[str, str | None] = {}
    for folded, node in objectives.items():
        stated = node.stated_parent_id
        parent = merged.get(stated.casefold()) if stated else None
        if stated is None:
            parents[folded] = None
        elif parent is None:
            parents[folded] = None
            problems.append(
                OkrProblem(
                    node.id,
                    f"parent objective {stated!r} is neither in the OKR file nor among the "
                    "tracker items: shown at the top",
                )
            )
        elif parent.kind is not OkrKind.OBJECTIVE:
            parents[folded] = None
            problems.append(
                OkrProblem(
                    node.id,
                    f"parent {parent.id!r} is a key result, not an objective: shown at the top",
                )
            )
        else:
            parents[folded] = parent.id.casefold()
    return parents


def _parent_cycles(parents: Mapping[str, str | None]) -> list[list[str]]:
    """Every cycle of the parent map once, as folded ids starting at its first member in input
    order, that member repeated at the end.

    Each objective has one parent, so following parents from any start either ends at the top
    or runs into a cycle; nodes already walked are never walked again (linear in objectives).
    """
    state: dict[str, int] = {}  # 1: on the current walk, 2: finished
    cycles: list[list[str]] = []
    order = {folded: index for index, folded in enumerate(parents)}
    for start in parents:
        walk: list[str] = []
        node: str | None = start
        while node is not None and node not in state:
            state[node] = 1
            walk.append(node)
            node = parents.get(node)
        if node is not None and state[node] == 1:
            members = walk[walk.index(node) :]
            first = min(range(len(members)), key=lambda i: order[members[i]])
            cycle = members[first:] + members[:first]
            cycles.append([*cycle, cycle[0]])
        for walked in walk:
            state[walked] = 2
    return cycles


def _place_key_results(
    merged: Mapping[str, OkrNode],
    objectives: Mapping[str, OkrNode],
    problems: list[OkrProblem],
) -> tuple[list[OkrNode], list[OkrNode]]:
    placed: list[OkrNode] = []
    orphans: list[OkrNode] = []
    for node in merged.values():
        if node.kind is not OkrKind.KEY_RESULT:
            continue
        stated = node.stated_parent_id
        parent = merged.get(stated.casefold()) if stated else None
        if parent is not None and parent.kind is OkrKind.OBJECTIVE:
            placed.append(_with_parent(node, parent.id))
            continue
        if stated is None:
            reason = "belongs to no objective"
        elif parent is None:
            reason = (
                f"its objective {stated!r} is neither in the OKR file nor among the tracker items"
            )
        else:
            reason = f"its parent {parent.id!r} is a key result, not an objective"
        orphans.append(node)
        problems.append(OkrProblem(node.id, f"orphan key result: {reason}"))
    return placed, orphans


def _with_parent(node: OkrNode, parent_id: str | None) -> OkrNode:
    return replace(node, parent_id=parent_id)


def _tree(
    objectives: Mapping[str, OkrNode],
    parents: Mapping[str, str | None],
    placed: list[OkrNode],
    orphans: list[OkrNode],
    conflicts: list[OkrConflict],
    problems: list[OkrProblem],
) -> OkrTree:
    canonical = {folded: node.id for folded, node in objectives.items()}
    children: dict[str, list[str]] = {}
    roots: list[str] = []
    for folded, node in objectives.items():
        parent = parents[folded]
        if parent is None:
            roots.append(node.id)
        else:
            children.setdefault(canonical[parent], []).append(node.id)
    key_results_of: dict[str, list[str]] = {}
    for kr in placed:
        key_results_of.setdefault(kr.parent_id or "", []).append(kr.id)
    by_id = {node.id: node for node in objectives.values()}
    ordered: dict[str, OkrNode] = {}
    stack = list(reversed(roots))
    while stack:
        objective_id = stack.pop()
        parent = parents[objective_id.casefold()]
        ordered[objective_id] = _with_parent(
            by_id[objective_id], canonical[parent] if parent else None
        )
        stack.extend(reversed(children.get(objective_id, [])))
    return OkrTree(
        objectives=ordered,
        key_results={kr.id: kr for kr in placed},
        roots=tuple(roots),
        children={k: tuple(v) for k, v in children.items()},
        key_results_of={k: tuple(v) for k, v in key_results_of.items()},
        orphan_key_results=tuple(orphans),
        conflicts=tuple(conflicts),
        problems=tuple(problems),
    )
