"""Capacity against demand: where the WSJF-ranked backlog of a team (or value stream) runs out
of capacity, interval by interval.

Rules (the report quotes them):
- Demand is one ranked list per team, best WSJF first; capacity is job-size points per
  planning interval, the intervals in the order they come. The intervals take the list in
  turn: each takes items in rank order while they fit in what it has left, and its cut line
  falls before the first item that does not fit. Later, smaller items do not jump the line:
  the rank is the order the work is to be done in, and filling gaps would silently re-rank it.
- Below an interval's cut line is everything no interval up to it reaches. For each cut the
  report names the best-WSJF items below it (what more capacity would buy first) and the items
  below it that are in progress: worked on although, by WSJF, they do not make the cut (the
  least WSJF first; an unscored item counts as the least).
- An item without a usable job size (missing, zero, negative) cannot be placed: it is listed as
  unsized with the reason and takes no capacity.
- Zero capacity in an interval puts its cut line where the previous one was (with only that
  interval, everything is below it), with a problem; negative or non-numeric capacity counts as
  zero, with a problem. A team with demand and no capacity in any interval is a problem and
  gets no cut lines; team names match ignoring case.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import NamedTuple

from spm_sync.core.domain import ItemRef

HIGH_WSJF_BELOW = 5
"""How many of the best-WSJF items below a cut line are named by default."""
_TOLERANCE = 1e-9


class DemandItem(NamedTuple):
    """One ranked item of a team's demand (a named tuple: a portfolio has many)."""

    ref: ItemRef
    wsjf: float | None
    job_size: float | None
    in_progress: bool = False


class IntervalCapacity(NamedTuple):
    interval: str
    points: float


@dataclass(frozen=True, slots=True)
class Unsized:
    item: DemandItem
    reason: str


@dataclass(frozen=True, slots=True)
class IntervalCut:
    """One interval of one team. `cut_index` counts the sized items above this interval's cut
    line (all intervals so far); `planned` are the items this interval takes."""

    team: str
    interval: str
    capacity: float
    cut_index: int
    planned: tuple[DemandItem, ...]
    planned_points: float
    remaining_points: float
    below_count: int
    below_points: float
    high_wsjf_below: tuple[DemandItem, ...]
    in_progress_below: tuple[DemandItem, ...]
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TeamCapacity:
    """One team's ranked, sized demand, its unsized items and its cut line per interval."""

    team: str
    ranked: tuple[DemandItem, ...]
    unsized: tuple[Unsized, ...]
    cuts: tuple[IntervalCut, ...]

    def above(self, cut: IntervalCut) -> tuple[DemandItem, ...]:
        """The items above `cut`'s line: what the intervals up to it take."""
        return self.ranked[: cut.cut_index]

    def below(self, cut: IntervalCut) -> tuple[DemandItem, ...]:
        """The items below `cut`'s line, in rank order."""
        return self.ranked[cut.cut_index :]


@dataclass(frozen=True, slots=True)
class CapacityProblem:
    team: str
    interval: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class CapacityPlan:
    teams: tuple[TeamCapacity, ...]
    problems: tuple[CapacityProblem, ...] = ()


def plan_capacity(
    demand: Mapping[str, Sequence[DemandItem]],
    capacity: Mapping[str, Sequence[IntervalCapacity]],
    *,
    high_wsjf_below: int = HIGH_WSJF_BELOW,
) -> CapacityPlan:
    """Cut lines of every team with capacity, in the order of `capacity`; teams with demand but
    no capacity are problems (their items are not planned)."""
    demand_by_name = {team.casefold(): (team, items) for team, items in demand.items()}
    known = {team.casefold() for team in capacity}
    problems: list[CapacityProblem] = []
    for folded, (team, items) in demand_by_name.items():
        if folded not in known:
            problems.append(
                CapacityProblem(
                    team,
                    None,
                    f"no capacity is configured for team {team!r}: its {len(items)} ranked "
                    "items are not planned",
                )
            )
    teams: list[TeamCapacity] = []
    for team, intervals in capacity.items():
        _, items = demand_by_name.get(team.casefold(), (team, ()))
        plan = _team_plan(team, items, intervals, high_wsjf_below)
        teams.append(plan)
        problems += [CapacityProblem(team, c.interval, p) for c in plan.cuts for p in c.problems]
        if not intervals:
            problems.append(CapacityProblem(team, None, f"team {team!r} has no intervals"))
    return CapacityPlan(tuple(teams), tuple(problems))


def _team_plan(
    team: str,
    items: Sequence[DemandItem],
    intervals: Sequence[IntervalCapacity],
    top: int,
) -> TeamCapacity:
    ranked: list[DemandItem] = []
    unsized: list[Unsized] = []
    for item in items:
        size = item.job_size
        if size is None:
            unsized.append(Unsized(item, "no job size: not counted against capacity"))
        elif not (math.isfinite(size) and size > 0):
            unsized.append(Unsized(item, f"job size {size:g} is not a positive number"))
        else:
            ranked.append(item)
    # Suffix sums make each cut's "below" figures O(1); the lists below are bounded by `top`
    # and by the in-progress items, found with one backward pass.
    below_points = [0.0] * (len(ranked) + 1)
    for index in range(len(ranked) - 1, -1, -1):
        below_points[index] = below_points[index + 1] + (ranked[index].job_size or 0.0)
    cuts: list[IntervalCut] = []
    start = 0
    for interval, points in intervals:
        problems: list[str] = []
        usable = points
        if not math.isfinite(points) or points < 0:
            problems.append(f"capacity {points:g} is not a number of points ≥ 0: taken as 0")
            usable = 0.0
        elif points == 0:
            problems.append(f"team {team!r} has zero capacity in {interval}: nothing fits")
        end, used = start, 0.0
        while end < len(ranked) and used + (ranked[end].job_size or 0.0) <= usable + _TOLERANCE:
            used += ranked[end].job_size or 0.0
            end += 1
        cuts.append(
            IntervalCut(
                team=team,
                interval=interval,
                capacity=usable,
                cut_index=end,
                planned=tuple(ranked[start:end]),
                planned_points=used,
                remaining_points=max(0.0, usable - used),
                below_count=len(ranked) - end,
                below_points=below_points[end],
                high_wsjf_below=_best_below(ranked, end, top),
                in_progress_below=_in_progress_below(ranked, end),
                problems=tuple(problems),
            )
        )
        start = end
    return TeamCapacity(team, tuple(ranked), tuple(unsized), tuple(cuts))


def _best_below(ranked: Sequence[DemandItem], cut: int, top: int) -> tuple[DemandItem, ...]:
    """The `top` best-WSJF scored items below the cut, best first (rank order breaks ties)."""
    scored = (
        (-(item.wsjf or 0.0), index, item)
        for index, item in enumerate(ranked[cut:])
        if item.wsjf is not None
    )
    return tuple(item for _, _, item in heapq.nsmallest(top, scored, key=itemgetter(0, 1)))


def _in_progress_below(ranked: Sequence[DemandItem], cut: int) -> tuple[DemandItem, ...]:
    """In-progress items below the cut, least WSJF first (unscored first, then rank order from
    the bottom)."""
    below = [(index, item) for index, item in enumerate(ranked[cut:]) if item.in_progress]
    below.sort(key=lambda pair: (pair[1].wsjf is not None, pair[1].wsjf or 0.0, -pair[0]))
    return tuple(item for _, item in below)
