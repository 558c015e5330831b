"""Dependency risk between ranked items: an item ranked above something it depends on, an item
blocked by unfinished orphan work, and dependency cycles, each with its chain.

The caller normalises link names into `Dependency(dependent, prerequisite)`: Jira "is blocked
by" and the inward side of "blocks", Azure DevOps predecessor/successor (the successor depends
on its predecessor). Every item an edge names must be among `items` (unranked ones with rank
None): an edge to an unknown item is reported, not followed. An item given twice counts once
(the first).

Rules (the report quotes them):
- Only unfinished work blocks: done items and the edges into or out of them are left out.
- Dependencies are transitive: A → B → C means A waits for C, so an item is flagged when it is
  ranked above (a smaller rank number than) the lowest-ranked unfinished item it waits for,
  directly or through others; that item and the chain to it are named. Unranked items pass the
  chain on but are never the lowest-ranked item. Ranks must be on one scale (the portfolio
  rank when items come from several backlogs).
- A ranked item that is not an orphan itself is flagged when it waits, directly or through
  others, for an unfinished orphan (work aligned to no Key Result); the nearest one is named.
- Items that wait for each other form a cycle: it is reported once, with the shortest closed
  chain through its first member and the number of items that all wait for each other. Inside
  a cycle every member waits for every other, so ranks among its members are not flagged again
  (the cycle is the finding), and a chain that passes through a cycle names where it enters
  and where it leaves it (`through_cycle`).
- Work is linear in items and edges: strongly connected components (Tarjan, iterative: no
  recursion limit) ordered so that every item is settled after what it waits for, then one pass
  over them. Chains are cut to `MAX_CHAIN` items, ending with the item found.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from spm_sync.core.domain import ItemRef
from spm_sync.engines.bulk import paused_gc

MAX_CHAIN = 12
"""Items a chain shows at most; a longer one keeps its start and ends with the item found."""
_NONE = -1


class RankedItem(NamedTuple):
    """An item of the dependency graph; `rank` is 1 for the top, None when unranked."""

    ref: ItemRef
    rank: int | None
    done: bool = False
    orphan: bool = False


class Dependency(NamedTuple):
    """`dependent` cannot finish before `prerequisite`; `link` is the tracker's link name."""

    dependent: ItemRef
    prerequisite: ItemRef
    link: str = ""


@dataclass(frozen=True, slots=True)
class RankConflict:
    """`item` is ranked above `prerequisite`, which it waits for through `chain`."""

    item: ItemRef
    rank: int
    prerequisite: ItemRef
    prerequisite_rank: int
    chain: tuple[ItemRef, ...]
    truncated: bool = False
    through_cycle: bool = False


@dataclass(frozen=True, slots=True)
class OrphanBlock:
    """`item` waits, through `chain`, for `orphan`: unfinished work aligned to no Key Result."""

    item: ItemRef
    orphan: ItemRef
    chain: tuple[ItemRef, ...]
    truncated: bool = False
    through_cycle: bool = False


@dataclass(frozen=True, slots=True)
class DependencyCycle:
    """One closed chain (the first item repeated at the end) of a group of `members` items that
    all wait for each other."""

    chain: tuple[ItemRef, ...]
    members: int


@dataclass(frozen=True, slots=True)
class UnknownDependency:
    dependency: Dependency
    reason: str


@dataclass(frozen=True, slots=True)
class DependencyRisk:
    rank_conflicts: tuple[RankConflict, ...] = ()
    orphan_blocks: tuple[OrphanBlock, ...] = ()
    cycles: tuple[DependencyCycle, ...] = ()
    unknown: tuple[UnknownDependency, ...] = ()


@paused_gc()
def dependency_risk(
    items: Iterable[RankedItem], dependencies: Iterable[Dependency]
) -> DependencyRisk:
    """Flag rank conflicts, orphan blocks and cycles; see the module docstring for the rules."""
    open_items: list[RankedItem] = []
    index: dict[ItemRef, int] = {}
    known: set[ItemRef] = set()
    for item in items:
        if item.ref in known:
            continue
        known.add(item.ref)
        if not item.done:
            index[item.ref] = len(open_items)
            open_items.append(item)
    graph, unknown = _graph(index, known, dependencies)
    comp, comps = _components(graph)
    walker = _Walker(open_items, graph, comp, comps)
    conflicts: list[RankConflict] = []
    blocks: list[OrphanBlock] = []
    for node, item in enumerate(open_items):
        if item.rank is None:
            continue
        conflict = walker.rank_conflict(node)
        if conflict is not None:
            conflicts.append(conflict)
        if not item.orphan:
            block = walker.orphan_block(node)
            if block is not None:
                blocks.append(block)
    conflicts.sort(key=lambda c: (c.rank, c.item))
    blocks.sort(key=lambda b: (open_items[index[b.item]].rank or 0, b.item))
    return DependencyRisk(tuple(conflicts), tuple(blocks), tuple(walker.cycles()), tuple(unknown))


def _graph(
    index: dict[ItemRef, int], known: set[ItemRef], dependencies: Iterable[Dependency]
) -> tuple[list[list[int]], list[UnknownDependency]]:
    """Adjacency (dependent → prerequisites) among unfinished items, each edge once."""
    graph: list[list[int]] = [[] for _ in index]
    seen: set[tuple[int, int]] = set()
    unknown: list[UnknownDependency] = []
    for dependency in dependencies:
        missing = [ref for ref in dependency[:2] if ref not in known]
        if missing:
            names = " and ".join(f"{c}/{k}" for c, k in dict.fromkeys(missing))
            unknown.append(UnknownDependency(dependency, f"{names} not among the items read"))
            continue
        dependent = index.get(dependency.dependent)
        prerequisite = index.get(dependency.prerequisite)
        if dependent is None or prerequisite is None:
            continue  # one end is done: nothing waits
        edge = (dependent, prerequisite)
        if edge not in seen:
            seen.add(edge)
            graph[dependent].append(prerequisite)
    return graph, unknown


def _components(graph: Sequence[Sequence[int]]) -> tuple[list[int], list[list[int]]]:
    """Strongly connected components (Tarjan, with an explicit stack). They are numbered in the
    order Tarjan completes them, which puts every component after all it can reach: what an
    item waits for is settled before the item."""
    count = len(graph)
    order = [_NONE] * count
    low = [0] * count
    on_stack = [False] * count
    stack: list[int] = []
    comp = [_NONE] * count
    comps: list[list[int]] = []
    counter = 0
    for root in range(count):
        if order[root] != _NONE:
            continue
        order[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = True
        work = [(root, 0)]
        while work:
            node, position = work[-1]
            successors = graph[node]
            if position < len(successors):
                work[-1] = (node, position + 1)
                nxt = successors[position]
                if order[nxt] == _NONE:
                    order[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack[nxt] = True
                    work.append((nxt, 0))
                elif on_stack[nxt] and order[nxt] < low[node]:
                    low[node] = order[nxt]
                continue
            work.pop()
            if work and low[node] < low[work[-1][0]]:
                low[work[-1][0]] = low[node]
            if low[node] == order[node]:
                members: list[int] = []
                while True:
                    member = stack.pop()
                    on_stack[member] = False
                    comp[member] = len(comps)
                    members.append(member)
                    if member == node:
                        break
                comps.append(members)
    return comp, comps


class _Walker:
    """Per component, the lowest-ranked item and the nearest orphan it waits for, with one
    step of the way to each; chains are then followed step by step."""

    def __init__(
        self,
        items: Sequence[RankedItem],
        graph: Sequence[Sequence[int]],
        comp: Sequence[int],
        comps: Sequence[list[int]],
    ) -> None:
        self.items, self.graph, self.comp, self.comps = items, graph, comp, comps
        size = len(comps)
        self.cyclic = [len(m) > 1 or m[0] in graph[m[0]] for m in comps]
        # Reached from outside the component (its own members excluded)...
        self.out_rank = [0] * size
        self.out_step: list[tuple[int, int]] = [(_NONE, _NONE)] * size
        self.out_worst = [_NONE] * size
        self.out_orphan_hops = [_UNREACHED] * size
        self.out_orphan_step: list[tuple[int, int]] = [(_NONE, _NONE)] * size
        self.out_orphan = [_NONE] * size
        # ...and on entering it (its members included).
        self.reach_rank = [0] * size
        self.reach_worst = [_NONE] * size
        self.orphan_member = [_NONE] * size
        self.second_orphan = [_NONE] * size
        for c in range(size):
            self._settle(c)

    def _settle(self, c: int) -> None:
        items, graph, comp = self.items, self.graph, self.comp
        for member in self.comps[c]:
            for nxt in graph[member]:
                target = comp[nxt]
                if target == c:
                    continue
                if self.reach_rank[target] > self.out_rank[c]:
                    self.out_rank[c] = self.reach_rank[target]
                    self.out_step[c] = (member, nxt)
                    self.out_worst[c] = self.reach_worst[target]
                hops = 0 if self.orphan_member[target] != _NONE else self.out_orphan_hops[target]
                if hops + 1 < self.out_orphan_hops[c]:
                    self.out_orphan_hops[c] = hops + 1
                    self.out_orphan_step[c] = (member, nxt)
                    self.out_orphan[c] = (
                        self.orphan_member[target]
                        if self.orphan_member[target] != _NONE
                        else self.out_orphan[target]
                    )
        self.reach_rank[c], self.reach_worst[c] = self.out_rank[c], self.out_worst[c]
        # Members are taken in input order, so ties name the first; a member beats an equal
        # rank further away (the shorter chain).
        worst_is_member = False
        for member in sorted(self.comps[c]):
            rank = items[member].rank or 0
            if rank > self.reach_rank[c] or (
                rank == self.reach_rank[c] and rank > 0 and not worst_is_member
            ):
                self.reach_rank[c], self.reach_worst[c] = rank, member
                worst_is_member = True
            if items[member].orphan:
                if self.orphan_member[c] == _NONE:
                    self.orphan_member[c] = member
                elif self.second_orphan[c] == _NONE:
                    self.second_orphan[c] = member

    def rank_conflict(self, node: int) -> RankConflict | None:
        c = self.comp[node]
        rank = self.items[node].rank or 0
        if self.out_rank[c] <= rank:
            return None
        chain, truncated, through = self._chain(node, self.out_step, self._worst_stop)
        worst = self.out_worst[c]
        chain, truncated = _capped(chain, truncated, worst)
        return RankConflict(
            self.items[node].ref,
            rank,
            self.items[worst].ref,
            self.out_rank[c],
            tuple(self.items[n].ref for n in chain),
            truncated,
            through,
        )

    def orphan_block(self, node: int) -> OrphanBlock | None:
        c = self.comp[node]
        if self.cyclic[c]:
            fellow = self.orphan_member[c]
            if fellow == node:
                fellow = self.second_orphan[c]
            if fellow != _NONE:
                return OrphanBlock(
                    self.items[node].ref,
                    self.items[fellow].ref,
                    (self.items[node].ref, self.items[fellow].ref),
                    through_cycle=True,
                )
        if self.out_orphan[c] == _NONE:
            return None
        chain, truncated, through = self._chain(node, self.out_orphan_step, self._orphan_stop)
        orphan = self.out_orphan[c]
        chain, truncated = _capped(chain, truncated, orphan)
        return OrphanBlock(
            self.items[node].ref,
            self.items[orphan].ref,
            tuple(self.items[n].ref for n in chain),
            truncated,
            through,
        )

    def _worst_stop(self, c: int) -> int:
        worst = self.reach_worst[c]
        return worst if worst != _NONE and self.comp[worst] == c else _NONE

    def _orphan_stop(self, c: int) -> int:
        return self.orphan_member[c]

    def _chain(
        self, node: int, steps: Sequence[tuple[int, int]], stop_in: _Stop
    ) -> tuple[list[int], bool, bool]:
        """From `node` along the recorded steps until the component holding the target; at
        most `MAX_CHAIN` items (then `truncated`)."""
        chain = [node]
        through = False
        c = self.comp[node]
        exit_from, nxt = steps[c]
        while len(chain) < MAX_CHAIN:
            if exit_from != chain[-1]:
                chain.append(exit_from)
                through = True
            chain.append(nxt)
            c = self.comp[nxt]
            stop = stop_in(c)
            if stop != _NONE:
                if stop != nxt:
                    chain.append(stop)
                    through = True
                return chain, False, through
            exit_from, nxt = steps[c]
        return chain, True, through

    def cycles(self) -> list[DependencyCycle]:
        found = []
        for c, members in enumerate(self.comps):
            if self.cyclic[c]:
                chain = self._closed_chain(c, members)
                found.append(DependencyCycle(tuple(self.items[n].ref for n in chain), len(members)))
        found.sort(key=lambda cycle: cycle.chain)
        return found

    def _closed_chain(self, c: int, members: list[int]) -> list[int]:
        """The shortest cycle through the component's first member (breadth-first inside the
        component: it always leads back, since every member reaches every other)."""
        start = min(members)
        came_from = {start: start}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            for nxt in self.graph[node]:
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if self.comp[nxt] == c and nxt not in came_from:
                    came_from[nxt] = node
                    queue.append(nxt)
        raise AssertionError("a strongly connected component always leads back to its start")


_UNREACHED = 1 << 62

_Stop = Callable[[int], int]
"""The item a chain ends at inside a component, or `_NONE` to follow the next step."""


def _capped(chain: list[int], truncated: bool, target: int) -> tuple[list[int], bool]:
    if not truncated and len(chain) <= MAX_CHAIN:
        return chain, False
    return [*chain[: MAX_CHAIN - 1], target], True
