"""OKR alignment: which Key Results each work item moves, with the evidence, and the work that
moves none (orphans), the Key Results nothing moves, and the alignment percentages.

Evidence, in priority order (`Via`):
1. `label` — a label/tag `<prefix><name>` on the item (case-insensitive), where the name (or,
   failing that, the whole label) is a Key Result id or alias: `KR-Growth-1` with prefix `kr-`
   names `growth-1`. `link` — an issue link of a configured OKR type from the item to a Key
   Result item or from a Key Result item to the item (links are stored on whichever side the
   tracker reports them, so a reverse index covers both). An item with labels and links reports
   every Key Result they name.
2. `rule` — config rules by project, team/area path or component; only for items without
   label or link evidence (an explicit marker beats a blanket rule).
3. `parent` — an item with no evidence of its own inherits every Key Result of its nearest
   aligned ancestor, at any depth; a Key Result item is aligned to itself for its children.
Links are followed one hop (item ↔ Key Result item) and are never chained, so a cycle of links
cannot loop; parent chains are walked iteratively with a visited set and memoised, so every
item is visited a bounded number of times and a parent cycle ends the walk with a reason.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from spm_sync.core.domain import ItemRef, KeyResult, Level, Objective, StatusCategory, WorkItem
from spm_sync.engines.alignment_evidence import Evidence, ParentWalk, Path, Stop, Via
from spm_sync.engines.alignment_rules import AlignmentRules, KeyResultNames
from spm_sync.engines.bulk import paused_gc
from spm_sync.engines.ranking import natural_key


class Alignment(NamedTuple):
    """Evidence that an item moves a Key Result (a named tuple: there are many of them).

    `path` is the chain of keys that proves it: (item,) for a label or rule, (item, Key Result
    item) for a link, (item, parent, ..., aligned ancestor) for inheritance. `detail` names the
    label, link type, rule or the ancestor's own evidence, for the report.
    """

    connection: str
    item_key: str
    kr_id: str
    via: Via
    path: tuple[str, ...]
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Orphan:
    """An in-scope item that moves no Key Result; `reason` is a sentence for the report."""

    connection: str
    item_key: str
    reason: str


@dataclass(frozen=True, slots=True)
class KeyResultCoverage:
    """The work aligned to one Key Result at the scope levels, whatever its status.

    `job_size` sums the usable job sizes of those items as they are; an epic and its features
    are both counted when both carry a size (trackers do not say whether a parent's size
    includes its children's).
    """

    kr_id: str
    items: tuple[ItemRef, ...]
    status_mix: Mapping[StatusCategory, int]
    active_items: int
    """In-scope items that are not Done: the work that still moves the Key Result."""
    job_size: float
    active_by_connection: Mapping[str, int] = field(default_factory=dict)
    """`active_items` per connection (connections with none are left out)."""


@dataclass(slots=True)
class ConnectionTally:
    """One connection's share of the alignment figures, counted like the totals."""

    in_scope_count: int = 0
    aligned_count: int = 0
    in_scope_job_size: float = 0.0
    aligned_job_size: float = 0.0
    unsized_in_scope_count: int = 0


@dataclass(frozen=True, slots=True)
class UncoveredKeyResult:
    """A Key Result that no active in-scope work moves, and why (no work, only Done work...)."""

    kr_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class AlignmentResult:
    """What the alignment engine found.

    A Key Result is *uncovered* when no in-scope, not-Done item moves it: one moved only by
    Done work has no active work left and is reported as uncovered, with that reason.
    `alignment_pct_job_size` is over in-scope items with a usable job size; items without one
    (missing, not a number, zero, negative or infinite) are left out of both sums.
    `key_results`/`objectives` include those registered from tracker items (see
    `AlignmentRules.register_tracker_key_results`).
    """

    alignments: Mapping[ItemRef, tuple[Alignment, ...]]
    orphans: tuple[Orphan, ...]
    uncovered: tuple[UncoveredKeyResult, ...]
    coverage: Mapping[str, KeyResultCoverage]
    key_results: tuple[KeyResult, ...]
    objectives: tuple[Objective, ...]
    in_scope_count: int
    aligned_count: int
    in_scope_job_size: float
    aligned_job_size: float
    unsized_in_scope_count: int
    warnings: tuple[str, ...] = field(default=())
    by_connection: Mapping[str, ConnectionTally] = field(default_factory=dict)
    """The in-scope figures per connection (connections with no item are left out)."""

    @property
    def alignment_pct_items(self) -> float | None:
        if not self.in_scope_count:
            return None
        return 100.0 * self.aligned_count / self.in_scope_count

    @property
    def alignment_pct_job_size(self) -> float | None:
        if not self.in_scope_job_size:
            return None
        return 100.0 * self.aligned_job_size / self.in_scope_job_size

    @property
    def orphan_refs(self) -> frozenset[ItemRef]:
        return frozenset((orphan.connection, orphan.item_key) for orphan in self.orphans)


def usable_job_size(item: WorkItem) -> float | None:
    size = item.job_size
    if size is None or not 0 < size < math.inf or "job_size" in item.field_problems:
        return None  # NaN fails the comparison too
    return size


@paused_gc()
def align(
    items: Iterable[WorkItem],
    key_results: Iterable[KeyResult],
    rules: AlignmentRules | None = None,
    objectives: Iterable[Objective] = (),
    context: Iterable[WorkItem] = (),
) -> AlignmentResult:
    """Align `items` (from any number of connections) to the OKR set.

    `context`: items outside the scope (ancestors and OKR link targets the scope leaves out)
    that inheritance follows; they are never aligned, orphans, counted or covered themselves.
    """
    rules = rules or AlignmentRules()
    by_ref: dict[ItemRef, WorkItem] = {}
    for item in items:
        by_ref[(item.connection, item.key)] = item
    followed: dict[ItemRef, WorkItem] = by_ref
    extra = {(i.connection, i.key): i for i in context if (i.connection, i.key) not in by_ref}
    if extra:
        followed = {**extra, **by_ref}
    names = KeyResultNames(key_results)
    evidence = Evidence(followed, names, rules, frozenset(extra))
    walk = ParentWalk(followed, evidence.anchors)
    scope = rules.scope
    levels, statuses = frozenset(scope.levels), frozenset(scope.status_categories)
    key_result_items, own_evidence = evidence.key_result_items, evidence.own
    inheritance = evidence.inherited_by_anchor
    alignments: dict[ItemRef, tuple[Alignment, ...]] = {}
    orphans: list[Orphan] = []
    for ref, item in by_ref.items():
        if ref in key_result_items:
            continue
        connection, key = ref
        own = own_evidence.get(ref)
        if own:
            alignments[ref] = tuple(
                Alignment(connection, key, kr_id, via, path, detail)
                for kr_id, via, path, detail in own
            )
            continue
        outcome = walk.outcome(ref)
        if type(outcome) is tuple:
            anchor = (connection, outcome[-1])
            inherited = inheritance.get(anchor) or evidence.inheritance(anchor)
            alignments[ref] = tuple(
                Alignment(connection, key, kr_id, Via.PARENT, outcome, detail)
                for kr_id, detail in inherited
            )
        elif item.level in levels and item.status_category in statuses:
            orphans.append(Orphan(connection, key, _orphan_reason(item, outcome, evidence)))
    orphans.sort(key=lambda orphan: (orphan.connection, natural_key(orphan.item_key)))
    return _summarise(by_ref, alignments, orphans, names, evidence, walk, rules, objectives)


def _orphan_reason(item: WorkItem, outcome: Path | Stop, evidence: Evidence) -> str:
    """A sentence built from the facts: labels, links, then what the parent chain showed."""
    ref = (item.connection, item.key)
    prefix = evidence.rules.for_connection(item.connection).label_prefix
    unknown = evidence.unknown_labels.get(ref)
    if unknown:
        noun = "label" if len(unknown) == 1 else "labels"
        verb = "names" if len(unknown) == 1 else "name"
        parts = [f"{noun} {', '.join(unknown)} {verb} no known key result"]
    else:
        parts = [f"no {prefix} label"]
    targets = evidence.dead_end_links.get(ref)
    if targets:
        parts.append(f"OKR link to {', '.join(targets)}, which is not a key result")
    else:
        parts.append("no OKR link")
    parts.append(_parent_reason(item, outcome, evidence))
    return ", ".join(parts)


def _parent_reason(item: WorkItem, outcome: Path | Stop, evidence: Evidence) -> str:
    parent = item.parent_key
    if parent is None:
        return "no parent"
    if (item.connection, parent) not in evidence.items:
        return f"parent {parent} is not in the pulled scope"
    assert isinstance(outcome, Stop)
    if outcome.kind == "cycle":
        return f"parent chain has a cycle at {outcome.key}"
    if outcome.key == parent:
        return f"parent {parent} is itself unaligned"
    if outcome.kind == "missing":
        return (
            f"parent {parent} is itself unaligned "
            f"(chain stops at {outcome.key}, which is not in the pulled scope)"
        )
    return f"parent {parent} is itself unaligned (chain ends at {outcome.key}, which has no parent)"


def _summarise(
    by_ref: Mapping[ItemRef, WorkItem],
    alignments: Mapping[ItemRef, tuple[Alignment, ...]],
    orphans: list[Orphan],
    names: KeyResultNames,
    evidence: Evidence,
    walk: ParentWalk,
    rules: AlignmentRules,
    objectives: Iterable[Objective],
) -> AlignmentResult:
    levels = frozenset(rules.scope.levels)
    statuses = frozenset(rules.scope.status_categories)
    in_scope = aligned = unsized = 0
    in_scope_size = aligned_size = 0.0
    tallies: dict[str, ConnectionTally] = {}
    for ref, item in by_ref.items():
        if item.level not in levels or item.status_category not in statuses:
            continue
        if ref in evidence.key_result_items:
            continue
        tally = tallies.get(ref[0])
        if tally is None:
            tally = tallies[ref[0]] = ConnectionTally()
        in_scope += 1
        tally.in_scope_count += 1
        found = ref in alignments
        aligned += found
        tally.aligned_count += found
        size = usable_job_size(item)
        if size is None:
            unsized += 1
            tally.unsized_in_scope_count += 1
        else:
            in_scope_size += size
            aligned_size += size if found else 0.0
            tally.in_scope_job_size += size
            tally.aligned_job_size += size if found else 0.0
    coverage, outside_levels = _coverage(by_ref, alignments, levels, statuses)
    uncovered = [
        UncoveredKeyResult(kr_id, _uncovered_reason(coverage.get(kr_id), outside_levels[kr_id]))
        for kr_id in names.by_id
        if kr_id not in coverage or not coverage[kr_id].active_items
    ]
    return AlignmentResult(
        alignments=alignments,
        orphans=tuple(orphans),
        uncovered=tuple(uncovered),
        coverage=coverage,
        key_results=tuple(names.by_id.values()),
        objectives=(*objectives, *evidence.synthetic_objectives),
        in_scope_count=in_scope,
        aligned_count=aligned,
        in_scope_job_size=in_scope_size,
        aligned_job_size=aligned_size,
        unsized_in_scope_count=unsized,
        warnings=(*evidence.warnings, *walk.warnings),
        by_connection=tallies,
    )


def _coverage(
    by_ref: Mapping[ItemRef, WorkItem],
    alignments: Mapping[ItemRef, tuple[Alignment, ...]],
    levels: frozenset[Level],
    statuses: frozenset[StatusCategory],
) -> tuple[dict[str, KeyResultCoverage], dict[str, int]]:
    """Per Key Result: the aligned items at the scope levels, any status (Done included); and
    how many aligned items sit outside the scope levels (tasks, unmapped types)."""
    refs: dict[str, list[ItemRef]] = defaultdict(list)
    outside_levels: dict[str, int] = defaultdict(int)
    mix: dict[str, dict[StatusCategory, int]] = {}
    active: dict[str, int] = defaultdict(int)
    active_where: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    sizes: dict[str, float] = defaultdict(float)
    done = StatusCategory.DONE
    for ref, found in alignments.items():
        item = by_ref[ref]
        if item.level not in levels:
            for alignment in found:
                outside_levels[alignment.kr_id] += 1
            continue
        status = item.status_category
        is_active = status in statuses and status is not done
        size = usable_job_size(item) or 0.0
        for alignment in found:
            kr_id = alignment.kr_id
            refs[kr_id].append(ref)
            counts = mix.get(kr_id)
            if counts is None:
                counts = mix[kr_id] = dict.fromkeys(StatusCategory, 0)
            counts[status] += 1
            active[kr_id] += is_active
            if is_active:
                active_where[kr_id][ref[0]] += 1
            sizes[kr_id] += size
    coverage = {
        kr_id: KeyResultCoverage(
            kr_id, tuple(keys), mix[kr_id], active[kr_id], sizes[kr_id], dict(active_where[kr_id])
        )
        for kr_id, keys in refs.items()
    }
    return coverage, outside_levels


def _uncovered_reason(coverage: KeyResultCoverage | None, outside_levels: int) -> str:
    if coverage is None:
        if outside_levels:
            return f"only work outside the scope levels ({_items(outside_levels)})"
        return "no work item moves it"
    done = coverage.status_mix[StatusCategory.DONE]
    if done == len(coverage.items):
        return f"only Done work ({_items(done)}): no active work"
    return "no in-scope active work (aligned items are outside the scope statuses)"


def _items(count: int) -> str:
    return f"{count} item" if count == 1 else f"{count} items"
