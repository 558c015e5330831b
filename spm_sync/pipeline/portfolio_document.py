"""The portfolio core's findings as the document's rows (`spm_sync.core.results_portfolio`).

Pure conversions: the engines name items by reference; the document names them with the title,
link, WSJF, job size and rank a reader needs, and caps the lists that grow with the portfolio.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from spm_sync.config.okr_measures import KeyResultExtras
from spm_sync.core.domain import ItemRef, StatusCategory, WorkItem
from spm_sync.core.results_alignment import AlignmentSummary
from spm_sync.core.results_portfolio import (
    IN_PROGRESS_BELOW_CAP,
    PORTFOLIO_LIST_CAP,
    CapacitySection,
    CutLine,
    DependencyCycleRow,
    DependencyFlag,
    DependencySection,
    KeyResultProgress,
    ObjectiveProgress,
    OkrConflictRow,
    OkrProblemRow,
    PortfolioItem,
    PortfolioSection,
    TeamCapacityRow,
    UnsizedDemand,
)
from spm_sync.engines.portfolio.capacity import CapacityPlan, DemandItem, TeamCapacity
from spm_sync.engines.portfolio.dependencies import DependencyRisk, OrphanBlock, RankConflict
from spm_sync.engines.portfolio.measures import KrMeasurement
from spm_sync.engines.portfolio.okr_tree import OkrConflict, OkrNode, OkrTree, OkrValue
from spm_sync.engines.portfolio.rollup import PortfolioRollup, WorkTotals
from spm_sync.engines.wsjf import Score

TRACKER_PREFIX = "tracker:"
"""How `spm_sync.engines.portfolio.okr_tree.tracker_source` starts."""


@dataclass(frozen=True)
class Namer:
    """Turns item references into document rows."""

    items: Mapping[ItemRef, WorkItem]
    scores: Mapping[ItemRef, Score]
    named: dict[ItemRef, PortfolioItem] = field(default_factory=dict)
    """Rows already made: an item below four cut lines is one row, not four."""

    def __call__(self, ref: ItemRef) -> PortfolioItem:
        row = self.named.get(ref)
        if row is None:
            row = self.named[ref] = self._row(ref)
        return row

    def _row(self, ref: ItemRef) -> PortfolioItem:
        item = self.items.get(ref)
        score = self.scores.get(ref)
        if item is None:
            return PortfolioItem(connection=ref[0], key=ref[1])
        size = item.job_size
        return PortfolioItem(
            connection=ref[0],
            key=ref[1],
            title=item.title,
            url=item.url,
            wsjf=score.wsjf if score is not None else None,
            job_size=size if size is not None and 0 <= size < float("inf") else None,
            rank=score.portfolio_rank if score is not None else None,
            in_progress=item.status_category is StatusCategory.IN_PROGRESS,
        )

    def url_of(self, sources: Sequence[str]) -> str | None:
        """The link of the first tracker item among an OKR node's sources."""
        for source in sources:
            connection, _, key = source.removeprefix(TRACKER_PREFIX).partition("/")
            if source.startswith(TRACKER_PREFIX) and key:
                item = self.items.get((connection, key))
                if item is not None and item.url:
                    return item.url
        return None


def objective_rows(
    tree: OkrTree,
    rollup: PortfolioRollup,
    measurements: Mapping[str, KrMeasurement],
    extras: Mapping[str, KeyResultExtras],
    name: Namer,
) -> list[ObjectiveProgress]:
    rows = []
    shares = {part.id: part.weight for o in rollup.objectives.values() for part in o.parts}
    for depth, node in tree.walk():
        rolled = rollup.objectives[node.id]
        work = rolled.work
        rows.append(
            ObjectiveProgress(
                id=node.id,
                title=node.title,
                depth=depth,
                parent_id=node.parent_id,
                sources=list(node.sources),
                url=name.url_of(node.sources),
                weight=node.weight,
                share=shares.get(node.id) if node.parent_id else None,
                target_date=node.target_date.isoformat() if node.target_date else None,
                progress_pct=rolled.progress_pct,
                confidence=min(1.0, max(0.0, rolled.confidence)),
                aligned_items=work.items,
                aligned_job_size=work.job_size,
                unsized_items=work.unsized,
                key_results=[
                    key_result_row(
                        tree.key_results[kr_id],
                        measurements.get(kr_id),
                        extras.get(kr_id),
                        rollup.key_results[kr_id].work if kr_id in rollup.key_results else None,
                        shares.get(kr_id, 0.0),
                        name.url_of(tree.key_results[kr_id].sources),
                    )
                    for kr_id in tree.key_results_of.get(node.id, ())
                ],
                problems=list(rolled.problems),
                notes=list(rolled.notes),
            )
        )
    return rows


def key_result_row(
    node: OkrNode,
    measurement: KrMeasurement | None,
    extras: KeyResultExtras | None,
    work: WorkTotals | None,
    share: float,
    url: str | None = None,
) -> KeyResultProgress:
    work = work or WorkTotals()
    return KeyResultProgress(
        id=node.id,
        title=node.title,
        objective_id=node.parent_id or node.stated_parent_id,
        sources=list(node.sources),
        url=url,
        weight=node.weight,
        share=min(1.0, max(0.0, share)),
        measure=measurement.measure.label if measurement else "manual",
        queries=dict(extras.queries) if extras else {},
        target=node.target,
        baseline=node.baseline,
        current=measurement.current if measurement else node.current,
        progress_pct=measurement.progress_pct if measurement else None,
        aligned_items=work.items,
        aligned_job_size=work.job_size,
        unsized_items=work.unsized,
        problems=list(measurement.problems) if measurement else ["not measured"],
        notes=list(measurement.notes) if measurement else [],
    )


def _value_text(value: OkrValue | object) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def with_measured_values(
    alignment: AlignmentSummary, portfolio: PortfolioSection | None
) -> AlignmentSummary:
    """The alignment part with each query-measured Key Result's value of this run, so the OKR
    section, its at-risk flags and the objective tree show one number. A query that failed
    leaves the value unknown there too, rather than the OKR file's stale one."""
    if portfolio is None:
        return alignment
    measured = {
        kr.id: kr.current
        for objective in portfolio.objectives
        for kr in objective.key_results
        if kr.measure != "manual"
    }
    if not measured:
        return alignment
    objectives = [
        objective.model_copy(
            update={
                "key_results": [
                    kr.model_copy(update={"current": measured[kr.id]}) if kr.id in measured else kr
                    for kr in objective.key_results
                ]
            }
        )
        for objective in alignment.objectives
    ]
    return alignment.model_copy(update={"objectives": objectives})


def conflict_rows(conflicts: Sequence[OkrConflict]) -> list[OkrConflictRow]:
    return [
        OkrConflictRow(
            id=c.id,
            field=c.field,
            used_value=_value_text(c.used_value),
            used_source=c.used_source,
            other_value=_value_text(c.other_value),
            other_source=c.other_source,
        )
        for c in conflicts
    ]


def tree_problem_rows(tree: OkrTree) -> list[OkrProblemRow]:
    return [OkrProblemRow(id=p.id, reason=p.reason, chain=list(p.chain)) for p in tree.problems]


def capacity_section(plan: CapacityPlan, by: str, name: Namer) -> CapacitySection:
    return CapacitySection(
        by="value_stream" if by == "value_stream" else "team",
        teams=[_team_row(team, name) for team in plan.teams],
        # A cut's own problems are on its row; these are the team's.
        problems=[f"{p.team}: {p.reason}" for p in plan.problems if p.interval is None],
    )


def _team_row(team: TeamCapacity, name: Namer) -> TeamCapacityRow:
    cuts = []
    for cut in team.cuts:
        above, below = team.above(cut), team.below(cut)
        cuts.append(
            CutLine(
                interval=cut.interval,
                capacity=cut.capacity,
                planned_count=len(cut.planned),
                planned_points=cut.planned_points,
                remaining_points=cut.remaining_points,
                below_count=cut.below_count,
                below_points=cut.below_points,
                last_above=name(above[-1].ref) if above else None,
                first_below=name(below[0].ref) if below else None,
                high_wsjf_below=[_demand(item, name) for item in cut.high_wsjf_below],
                in_progress_below=[
                    _demand(item, name) for item in cut.in_progress_below[:IN_PROGRESS_BELOW_CAP]
                ],
                in_progress_below_count=len(cut.in_progress_below),
                problems=list(cut.problems),
            )
        )
    return TeamCapacityRow(
        team=team.team,
        ranked_count=len(team.ranked),
        demand_points=sum(item.job_size or 0.0 for item in team.ranked),
        cuts=cuts,
        unsized=[
            UnsizedDemand(item=_demand(u.item, name), reason=u.reason)
            for u in team.unsized[:PORTFOLIO_LIST_CAP]
        ],
        unsized_count=len(team.unsized),
    )


def _demand(item: DemandItem, name: Namer) -> PortfolioItem:
    """The row of a demand item (its WSJF and status are the item's, as `Namer` shows them)."""
    return name(item.ref)


def dependency_section(risk: DependencyRisk, links: int, name: Namer) -> DependencySection:
    cap = PORTFOLIO_LIST_CAP
    return DependencySection(
        links=links,
        rank_conflicts=[_flag(c, name) for c in risk.rank_conflicts[:cap]],
        rank_conflict_count=len(risk.rank_conflicts),
        orphan_blocks=[_flag(b, name) for b in risk.orphan_blocks[:cap]],
        orphan_block_count=len(risk.orphan_blocks),
        cycles=[
            DependencyCycleRow(
                connection=c.chain[0][0], chain=[key for _, key in c.chain], members=c.members
            )
            for c in risk.cycles[:cap]
        ],
        cycle_count=len(risk.cycles),
        unknown=[
            f"{u.dependency.dependent[0]}/{u.dependency.dependent[1]} waits for "
            f"{u.dependency.prerequisite[0]}/{u.dependency.prerequisite[1]}: {u.reason}"
            for u in risk.unknown[:cap]
        ],
        unknown_count=len(risk.unknown),
    )


def _flag(found: RankConflict | OrphanBlock, name: Namer) -> DependencyFlag:
    blocker = found.prerequisite if isinstance(found, RankConflict) else found.orphan
    return DependencyFlag(
        kind="ranked_above" if isinstance(found, RankConflict) else "orphan",
        item=name(found.item),
        blocker=name(blocker),
        chain=[key for _, key in found.chain],
        truncated=found.truncated,
        through_cycle=found.through_cycle,
    )
