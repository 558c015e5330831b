"""The portfolio part of the result document (`CycleResult.portfolio`): OKRs that measure
themselves, capacity against demand, and dependency risk.

The contract between the portfolio stage (`spm_sync.pipeline.portfolio_stage`) and the report:
- `objectives`: the merged OKR tree (OKR file and tracker items) depth-first, each objective
  with its progress and confidence rolled up from weighted Key Results and child objectives,
  its aligned work and job size (its own and every objective's below it), and each Key Result
  with its measure (query per connection, or manual), measured value, progress, aligned work,
  problems and notes;
- `orphan_key_results`, `conflicts`, `tree_problems`: what the merge could not place or had
  to choose, never silently resolved (`spm_sync.engines.portfolio.okr_tree`);
- `queries`: per connection, how many Key Result queries ran in its one request batch and how
  many failed;
- `capacity`: per team, each planning interval's cut line in the WSJF-ranked demand, the best
  items below it and the items in progress below it (None when no capacity is configured);
- `dependencies`: items ranked above what they wait for, items blocked by unfinished orphan
  work, and dependency cycles, each with its chain.

Lists that grow with the portfolio are capped (`PORTFOLIO_LIST_CAP`) with their totals as
fields, like the other capped lists of the document. Chains are at most
`spm_sync.engines.portfolio.dependencies.MAX_CHAIN` items.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from spm_sync.core.result_types import Count, Percent, ResultModel

PORTFOLIO_LIST_CAP = 200
"""Rows listed per long list (flags, unsized items)."""
IN_PROGRESS_BELOW_CAP = 50
"""In-progress items listed per cut line (a team has one per interval; they overlap)."""


class PortfolioItem(ResultModel):
    """An item named by the portfolio section: enough for a row with a link."""

    connection: str
    key: str
    title: str = ""
    url: str | None = None
    wsjf: float | None = None
    job_size: float | None = None
    rank: int | None = Field(None, ge=1)
    """The portfolio rank (1 = the best WSJF across connections); None when unranked."""
    in_progress: bool = False


class KeyResultProgress(ResultModel):
    id: str
    title: str
    objective_id: str | None = None
    sources: list[str] = Field(default_factory=list)
    """Where the Key Result comes from: "file" and/or "tracker:<connection>/<key>"."""
    url: str | None = None
    """The tracker item that stands for it, when there is one."""
    weight: float | None = None
    """The weight as stated (None: unweighted)."""
    share: float = Field(0.0, ge=0, le=1)
    """Its share of its objective after scaling (0 when it was left out)."""
    measure: str = "manual"
    """count, sum(<field>), share_done or manual."""
    queries: dict[str, str] = Field(default_factory=dict)
    """Connection -> the query text that measures it (the evidence of a measured value)."""
    target: float | None = None
    baseline: float | None = None
    current: float | None = None
    """This run's value: measured by the query, or the stated one for a manual measure."""
    progress_pct: float | None = None
    """From baseline toward target (may pass 100 or fall below 0); None when unknown."""
    aligned_items: Count = 0
    aligned_job_size: float = Field(0.0, ge=0)
    unsized_items: Count = 0
    problems: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class ObjectiveProgress(ResultModel):
    id: str
    title: str
    depth: Count = 0
    parent_id: str | None = None
    sources: list[str] = Field(default_factory=list)
    url: str | None = None
    """The tracker item that stands for it, when there is one."""
    weight: float | None = None
    share: float | None = Field(None, ge=0, le=1)
    """Its share of its parent after scaling; None for a top objective."""
    target_date: str | None = None
    progress_pct: Percent | None = None
    """Weighted mean of its measured parts' progress, each taken between 0 and 100."""
    confidence: float = Field(0.0, ge=0, le=1)
    """How much of the objective the progress stands on (1: every part measured cleanly)."""
    aligned_items: Count = 0
    aligned_job_size: float = Field(0.0, ge=0)
    unsized_items: Count = 0
    key_results: list[KeyResultProgress] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class OkrConflictRow(ResultModel):
    """Two sources state different values for one field; `used_value` is the tree's."""

    id: str
    field: str
    used_value: str
    used_source: str
    other_value: str
    other_source: str


class OkrProblemRow(ResultModel):
    id: str
    reason: str
    chain: list[str] = Field(default_factory=list)


class QueryRun(ResultModel):
    """One connection's Key Result queries in this run (one batch, one `run_queries` call)."""

    connection: str
    queries: Count = 0
    failed: Count = 0
    error: str | None = None
    """Why none of them could run (the connection was not usable, or the batch failed)."""


class CutLine(ResultModel):
    """One interval of one team: what it takes in rank order, and what is below its line."""

    interval: str
    capacity: float = Field(ge=0)
    planned_count: Count = 0
    planned_points: float = Field(0.0, ge=0)
    remaining_points: float = Field(0.0, ge=0)
    below_count: Count = 0
    below_points: float = Field(0.0, ge=0)
    last_above: PortfolioItem | None = None
    """The last item above the line (where the line is drawn); None when nothing fits."""
    first_below: PortfolioItem | None = None
    high_wsjf_below: list[PortfolioItem] = Field(default_factory=list)
    """The best-WSJF items below the line: what more capacity would buy first."""
    in_progress_below: list[PortfolioItem] = Field(default_factory=list)
    """Items below the line that are in progress, least WSJF first (capped)."""
    in_progress_below_count: Count = 0
    problems: list[str] = Field(default_factory=list)


class UnsizedDemand(ResultModel):
    item: PortfolioItem
    reason: str


class TeamCapacityRow(ResultModel):
    team: str
    ranked_count: Count = 0
    demand_points: float = Field(0.0, ge=0)
    cuts: list[CutLine] = Field(default_factory=list)
    unsized: list[UnsizedDemand] = Field(default_factory=list)
    unsized_count: Count = 0


class CapacitySection(ResultModel):
    by: Literal["team", "value_stream"] = "team"
    teams: list[TeamCapacityRow] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)


class DependencyFlag(ResultModel):
    """`item` waits, through `chain` (item first, blocker last), for `blocker`: ranked below it
    (`ranked_above`) or unfinished work aligned to no Key Result (`orphan`). The chain names
    keys of `item`'s connection: links join items of one tracker."""

    kind: Literal["ranked_above", "orphan"]
    item: PortfolioItem
    blocker: PortfolioItem
    chain: list[str] = Field(default_factory=list)
    truncated: bool = False
    through_cycle: bool = False


class DependencyCycleRow(ResultModel):
    connection: str
    chain: list[str] = Field(default_factory=list)
    """Keys, the first repeated at the end."""
    members: Count = 0


class DependencySection(ResultModel):
    links: Count = 0
    """Dependency links read between items ("blocks", predecessor/successor)."""
    rank_conflicts: list[DependencyFlag] = Field(default_factory=list)
    rank_conflict_count: Count = 0
    orphan_blocks: list[DependencyFlag] = Field(default_factory=list)
    orphan_block_count: Count = 0
    cycles: list[DependencyCycleRow] = Field(default_factory=list)
    cycle_count: Count = 0
    unknown: list[str] = Field(default_factory=list)
    """Links to items not among the items read (out of scope, or deleted), capped."""
    unknown_count: Count = 0


class PortfolioSection(ResultModel):
    objectives: list[ObjectiveProgress] = Field(default_factory=list)
    orphan_key_results: list[KeyResultProgress] = Field(default_factory=list)
    conflicts: list[OkrConflictRow] = Field(default_factory=list)
    tree_problems: list[OkrProblemRow] = Field(default_factory=list)
    queries: list[QueryRun] = Field(default_factory=list)
    capacity: CapacitySection | None = None
    dependencies: DependencySection = Field(default_factory=DependencySection)

    @property
    def problem_count(self) -> int:
        """Problems the report counts in its heading: tree problems, conflicts, Key Results
        that could not be measured, capacity problems."""
        krs = [kr for o in self.objectives for kr in o.key_results] + self.orphan_key_results
        capacity = len(self.capacity.problems) if self.capacity else 0
        measured = sum(1 for kr in krs if kr.problems)
        return len(self.tree_problems) + len(self.conflicts) + measured + capacity
