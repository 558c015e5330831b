"""What the report shows of the portfolio section: the objective tree with progress bars,
capacity against demand with its cut lines, and dependency risks; computed once, read by the
HTML and the text template alike (so both carry the same numbers).

Each node links to its evidence: a Key Result to its aligned items in the OKR section (an
anchor) and to the query that measures it (shown), an objective or Key Result that stands for a
tracker item to that item. Long lists are capped by the report's `Caps` like every other list.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from reports.caps import Caps, Shown
from reports.formatting import format_count
from spm_sync.core.results_portfolio import (
    CapacitySection,
    CutLine,
    DependencyCycleRow,
    DependencyFlag,
    DependencySection,
    KeyResultProgress,
    ObjectiveProgress,
    PortfolioItem,
    PortfolioSection,
    TeamCapacityRow,
)

INDENT_PX = 18
"""Indent per tree level in the HTML."""


@dataclass(frozen=True)
class KeyResultNode:
    row: KeyResultProgress
    bar: int | None
    """Progress for the bar, 0-100 (None: not measured)."""
    progress: str
    value: str
    """'now 1, target 5 (from 0)'."""
    anchor: str | None
    """The anchor of its aligned items in the OKR section; None when it has no row there."""
    queries: list[str]
    """'<connection>: <query>' per measured connection."""


@dataclass(frozen=True)
class ObjectiveNode:
    row: ObjectiveProgress
    indent: int
    bar: int | None
    progress: str
    confidence: str
    key_results: list[KeyResultNode]
    anchor: str | None
    hidden_key_results: int = 0
    """Its Key Results left out to keep the email short (all in the full report)."""


@dataclass(frozen=True)
class CutView:
    cut: CutLine
    high_wsjf_below: Shown[PortfolioItem]
    in_progress_below: Shown[PortfolioItem]


@dataclass(frozen=True)
class TeamView:
    team: TeamCapacityRow
    cuts: list[CutView]


@dataclass(frozen=True)
class FlagView:
    flag: DependencyFlag
    chain: str
    """'E2 → E1 → E3'."""


@dataclass(frozen=True)
class CycleView:
    cycle: DependencyCycleRow
    chain: str


@dataclass(frozen=True)
class PortfolioView:
    section: PortfolioSection
    objectives: Shown[ObjectiveNode]
    orphan_key_results: list[KeyResultNode]
    problems: Shown[str]
    """Tree problems and conflicts, one line each."""
    capacity: CapacitySection | None
    teams: list[TeamView]
    cuts: Shown[CutView]
    """Every cut line shown (teams in order, intervals in order), with the total."""
    dependencies: DependencySection
    rank_conflicts: Shown[FlagView]
    orphan_blocks: Shown[FlagView]
    cycles: Shown[CycleView]

    @property
    def lists(self) -> list[Shown]:
        """Every capped list, for the report's "see the full report" decision."""
        hidden = sum(o.hidden_key_results for o in self.objectives.rows)
        found: list[Shown] = [
            self.objectives,
            Shown([], hidden),
            self.cuts,
            self.problems,
            self.rank_conflicts,
            self.orphan_blocks,
            self.cycles,
        ]
        for cut in self.cuts.rows:
            found += [cut.high_wsjf_below, cut.in_progress_below]
        return found


def build_portfolio_view(
    section: PortfolioSection, caps: Caps, okr_rows: set[str], okr_objectives: set[str]
) -> PortfolioView:
    """`okr_rows` and `okr_objectives`: the Key Result and objective ids the OKR section
    lists (the anchors that exist)."""
    deps = section.dependencies
    teams, cuts = _teams(section.capacity, caps)
    return PortfolioView(
        section=section,
        objectives=_tree(section.objectives, caps.portfolio_rows, okr_rows, okr_objectives),
        orphan_key_results=[_key_result(kr, okr_rows) for kr in section.orphan_key_results],
        problems=Shown.cap(_problems(section), caps.portfolio_flags),
        capacity=section.capacity,
        teams=teams,
        cuts=cuts,
        dependencies=deps,
        rank_conflicts=Shown.cap(
            [_flag(f) for f in deps.rank_conflicts], caps.portfolio_flags, deps.rank_conflict_count
        ),
        orphan_blocks=Shown.cap(
            [_flag(f) for f in deps.orphan_blocks], caps.portfolio_flags, deps.orphan_block_count
        ),
        cycles=Shown.cap(
            [CycleView(c, _chain(c.chain)) for c in deps.cycles],
            caps.portfolio_flags,
            deps.cycle_count,
        ),
    )


def _bar(progress: float | None) -> int | None:
    if progress is None:
        return None
    return round(min(100.0, max(0.0, progress)))


def _pct(progress: float | None) -> str:
    return "not measured" if progress is None else f"{progress:g}%"


def _tree(
    objectives: list[ObjectiveProgress], rows: int, okr_rows: set[str], okr_objectives: set[str]
) -> Shown[ObjectiveNode]:
    """Objectives depth-first until `rows` rows (an objective and each Key Result count one)
    are shown; the last objective shown may show only its first Key Results."""
    shown: list[ObjectiveNode] = []
    used = 0
    for row in objectives:
        if used >= rows:
            break
        node = _objective(row, okr_rows, okr_objectives)
        room = max(0, rows - used - 1)
        if len(node.key_results) > room:
            hidden = len(node.key_results) - room
            node = replace(node, key_results=node.key_results[:room], hidden_key_results=hidden)
        used += 1 + len(node.key_results)
        shown.append(node)
    return Shown(shown, len(objectives))


def _objective(
    row: ObjectiveProgress, okr_rows: set[str], okr_objectives: set[str]
) -> ObjectiveNode:
    return ObjectiveNode(
        row=row,
        indent=row.depth * INDENT_PX,
        bar=_bar(row.progress_pct),
        progress=_pct(row.progress_pct),
        confidence=f"{row.confidence:.0%}",
        key_results=[_key_result(kr, okr_rows) for kr in row.key_results],
        anchor=f"okr-{row.id}" if row.id in okr_objectives else None,
    )


def _key_result(row: KeyResultProgress, okr_rows: set[str]) -> KeyResultNode:
    value = f"now {format_count(row.current)}, target {format_count(row.target)}"
    if row.baseline is not None:
        value += f" (from {format_count(row.baseline)})"
    return KeyResultNode(
        row=row,
        bar=_bar(row.progress_pct),
        progress=_pct(row.progress_pct),
        value=value,
        anchor=f"kr-{row.id}" if row.id in okr_rows else None,
        queries=[f"{connection}: {text}" for connection, text in row.queries.items()],
    )


def _problems(section: PortfolioSection) -> list[str]:
    lines = [f"{p.id}: {p.reason}" for p in section.tree_problems]
    lines += [
        f"{c.id}: {c.field} is {c.used_value!r} in {c.used_source} but {c.other_value!r} in "
        f"{c.other_source}; {c.used_source}'s value is used"
        for c in section.conflicts
    ]
    return lines


def _teams(capacity: CapacitySection | None, caps: Caps) -> tuple[list[TeamView], Shown[CutView]]:
    """Teams with their first cut lines, `caps.portfolio_cuts` in all."""
    if capacity is None:
        return [], Shown([], 0)
    teams: list[TeamView] = []
    shown: list[CutView] = []
    total = 0
    for team in capacity.teams:
        total += len(team.cuts)
        room = max(0, caps.portfolio_cuts - len(shown))
        cuts = [_cut(cut, caps.portfolio_named) for cut in team.cuts[:room]]
        shown += cuts
        if cuts or not team.cuts:
            teams.append(TeamView(team=team, cuts=cuts))
    return teams, Shown(shown, total)


def _cut(cut: CutLine, named: int) -> CutView:
    return CutView(
        cut=cut,
        high_wsjf_below=Shown.cap(cut.high_wsjf_below, named),
        in_progress_below=Shown.cap(cut.in_progress_below, named, cut.in_progress_below_count),
    )


def _chain(keys: list[str]) -> str:
    return " → ".join(keys)


def _flag(flag: DependencyFlag) -> FlagView:
    chain = _chain(flag.chain)
    if flag.truncated:
        chain = chain.rsplit(" → ", 1)[0] + " → … → " + flag.blocker.key
    return FlagView(flag, chain)
