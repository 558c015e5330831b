"""The flow part of the result document (`CycleResult.flow`): what the report shows about flow.

The contract between the flow stage and the report, in the style of `spm_sync.core.results`:
- `groups`: flow metrics per value stream, per objective and per Key Result (an item in
  several groups counts in each): flow time percentiles, velocity, a weekly throughput series
  for charts, load, efficiency (None unless active/wait statuses are configured), distribution
  by flow class and the oldest work in progress, named;
- `kanban`: the Portfolio Kanban per value stream, stages in board order, each column's cards
  (with WSJF score when scored), count and limit; the stages over their limit, the items to
  stop starting and every item beyond a limit;
- `forecasts`: each objective's completion dates (50/85/95%) against its target date, with a
  verdict and a sentence why;
- `problems`: per-item flow problems (history gaps, clock skew, unmapped statuses);
- `history`: per connection, the status changes this run read and stored.
Key Result coverage (the first-run chart) needs nothing new: `KeyResultAlignment` already
carries each Key Result's item count and job size total, and the orphan list is complete, so
`CycleResult.key_result_coverage` derives the bars as `CoverageBar`s.

Lists that grow with the portfolio are capped like the other capped lists of the document
(`FlowCaps`, recorded in `caps`), with their totals as fields: cards per column, the item
lists of the board (stop starting, beyond a limit) and the problems. Ageing lists are short by
configuration (`ageing_named`). Verdicts and flags derived from complete fields are computed
fields, recomputed when a stored document is read back.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, computed_field, model_validator

from spm_sync.core.domain import StatusCategory
from spm_sync.core.result_types import Count, ResultModel, UtcDatetime

FlowGroupKind = Literal["value_stream", "objective", "key_result"]
FlowClassName = Literal["feature", "defect", "risk", "debt", "other"]
FlowStartName = Literal["created", "started"]
ForecastVerdict = Literal["on_track", "at_risk", "no_target", "no_history", "nothing_left"]
ValueStreamSource = Literal["project", "area_path", "component", "label", "connection"]
LevelName = Literal["task", "story", "feature", "epic", "initiative"]

CARDS_PER_COLUMN_CAP = 50
"""Cards listed per Kanban column (oldest entry first); `count` covers every card."""
ITEM_LIST_CAP = 200
"""Items listed under "stop starting", "beyond a limit" and per exceeded limit."""
FLOW_PROBLEMS_CAP = 200
"""Per-item flow problems listed; `problem_count` covers every one."""


class FlowCaps(ResultModel):
    """The longest the capped lists of the flow section may be (see the module docstring)."""

    cards_per_column: Count = CARDS_PER_COLUMN_CAP
    item_lists: Count = ITEM_LIST_CAP
    problems: Count = FLOW_PROBLEMS_CAP


class FlowItemRef(ResultModel):
    """An item named in the flow section: enough for a row with a link."""

    connection: str
    key: str
    title: str = ""
    url: str | None = None


# --- metrics per group -------------------------------------------------------------------------


class FlowTime(ResultModel):
    """Nearest-rank percentiles of flow time in days (each is a real item's flow time), over
    the `sample_size` items done within the window with both ends known."""

    p50: float = Field(ge=0)
    p85: float = Field(ge=0)
    p95: float = Field(ge=0)
    sample_size: int = Field(ge=1)

    @model_validator(mode="after")
    def _ascending(self) -> FlowTime:
        if not self.p50 <= self.p85 <= self.p95:
            raise ValueError(f"percentiles must ascend: {self.p50}, {self.p85}, {self.p95}")
        return self


class ThroughputWeek(ResultModel):
    """Items done in the week starting `week_start` (weeks end at the run, oldest first)."""

    week_start: date
    count: Count


class AgeingItem(FlowItemRef):
    """Work in progress and how long it has been in flow; `exceeds_percentile` is the highest
    flow-time percentile of its group (50, 85 or 95) it is already older than."""

    age_days: float = Field(ge=0)
    status: str
    stage: str | None = None
    exceeds_percentile: Literal[50, 85, 95] | None = None


class GroupFlow(ResultModel):
    """The flow of one value stream, objective or Key Result over the window.

    `done` counts items done within the window with a known done time (they make flow time,
    velocity, throughput, efficiency and `distribution`); `load` counts work in progress now
    (`wip_distribution` splits it by class). `ageing` names the oldest work in progress,
    oldest first; `ageing_over_p85` counts every item older than the group's 85th percentile.
    """

    kind: FlowGroupKind
    id: str
    """The value stream's name, the objective's id or the Key Result's id."""
    title: str
    objective_id: str | None = None
    """For a Key Result: its objective."""
    items: Count = 0
    done: Count = 0
    flow_time: FlowTime | None = None
    velocity_per_week: float = Field(0.0, ge=0)
    weekly_throughput: list[ThroughputWeek] = Field(default_factory=list)
    load: Count = 0
    efficiency: float | None = Field(None, ge=0, le=1)
    """Active time over active plus wait time; None unless active/wait statuses are set."""
    distribution: dict[FlowClassName, Count] = Field(default_factory=dict)
    wip_distribution: dict[FlowClassName, Count] = Field(default_factory=dict)
    ageing: list[AgeingItem] = Field(default_factory=list)
    ageing_over_p85: Count = 0

    @model_validator(mode="after")
    def _consistent(self) -> GroupFlow:
        if self.done > self.items or self.load > self.items:
            raise ValueError(
                f"{self.kind} {self.id}: done {self.done} / load {self.load} exceed items "
                f"{self.items}"
            )
        weekly = sum(week.count for week in self.weekly_throughput)
        if self.weekly_throughput and weekly != self.done:
            raise ValueError(
                f"{self.kind} {self.id}: weekly throughput {weekly} != done {self.done}"
            )
        return self


# --- Portfolio Kanban ----------------------------------------------------------------------


class KanbanStage(ResultModel):
    """One stage of the board, in board order; `category` says whether it counts as started."""

    name: str
    category: StatusCategory


class KanbanCard(FlowItemRef):
    status: str
    entered: UtcDatetime | None = None
    """The last entry into its stage; None when the history does not say."""
    wsjf: float | None = None
    beyond_limit: bool = False
    """Past a limit of its column (portfolio-wide or its stream's): a "stop starting" item."""


class KanbanColumn(ResultModel):
    """One stage of one board: the first `caps.cards_per_column` cards in order of entry,
    `count` over all of them, and the value stream's limit (None: unlimited)."""

    stage: str
    cards: list[KanbanCard] = Field(default_factory=list)
    count: Count = 0
    limit: Count | None = None

    @model_validator(mode="after")
    def _count_covers_cards(self) -> KanbanColumn:
        if len(self.cards) > self.count:
            raise ValueError(f"{self.stage}: {len(self.cards)} cards listed, count {self.count}")
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def over_limit(self) -> bool:
        return self.limit is not None and self.count > self.limit

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cards_omitted(self) -> int:
        return self.count - len(self.cards)


class KanbanBoard(ResultModel):
    """The board of one value stream (`value_stream` None: items of no stream), columns in
    board order."""

    value_stream: str | None
    columns: list[KanbanColumn] = Field(default_factory=list)


class StageOverLimit(ResultModel):
    """A stage over its limit: portfolio-wide (`value_stream` None) or on one stream's board.
    `beyond` lists the cards past the limit, most recent entry first (capped)."""

    value_stream: str | None = None
    stage: str
    limit: Count
    count: Count
    beyond: list[FlowItemRef] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def over_by(self) -> int:
        return max(0, self.count - self.limit)


class PortfolioKanbanView(ResultModel):
    """The Portfolio Kanban: stages, boards per value stream, portfolio-wide counts and
    limits per stage, what exceeds a limit and what to stop starting."""

    stages: list[KanbanStage] = Field(default_factory=list)
    boards: list[KanbanBoard] = Field(default_factory=list)
    stage_counts: dict[str, Count] = Field(default_factory=dict)
    """Cards per stage across the portfolio, each item once."""
    stage_limits: dict[str, Count] = Field(default_factory=dict)
    """Portfolio-wide limits (`wip_limits.per_stage`); a stage without one is unlimited."""
    over_limit: list[StageOverLimit] = Field(default_factory=list)
    stop_starting: list[FlowItemRef] = Field(default_factory=list)
    """Items to stop starting, most recent entry first (capped; see `stop_starting_count`)."""
    stop_starting_count: Count = 0
    over_limit_items: list[FlowItemRef] = Field(default_factory=list)
    """Every item beyond some limit, by connection and key (capped)."""
    over_limit_item_count: Count = 0
    unplaced_count: Count = 0
    """Items whose status is mapped to no stage (named among the problems)."""

    @model_validator(mode="after")
    def _counts_cover_lists(self) -> PortfolioKanbanView:
        if len(self.stop_starting) > self.stop_starting_count:
            raise ValueError("stop_starting lists more items than stop_starting_count")
        if len(self.over_limit_items) > self.over_limit_item_count:
            raise ValueError("over_limit_items lists more items than over_limit_item_count")
        return self


# --- forecasts -----------------------------------------------------------------------------


class ObjectiveForecastRow(ResultModel):
    """When an objective's open items are done, 50/85/95% likely, against its target date.
    Dates are None when there is no forecast (see `verdict`) or too few trials finished within
    the horizon (`beyond_horizon` counts those)."""

    objective_id: str
    title: str
    remaining: Count = 0
    trials: Count = 0
    p50: date | None = None
    p85: date | None = None
    p95: date | None = None
    beyond_horizon: Count = 0
    target_date: date | None = None
    verdict: ForecastVerdict
    reason: str

    @computed_field  # type: ignore[prop-decorator]
    @property
    def at_risk(self) -> bool:
        return self.verdict == "at_risk"


# --- Key Result coverage (derived from the alignment part) -----------------------------------


class CoverageBar(ResultModel):
    """One bar of the coverage chart: a Key Result's aligned items and job size, or the
    orphans (`kind` "orphans", `id` None) as a bar of their own."""

    kind: Literal["key_result", "orphans"]
    id: str | None = None
    title: str
    objective_id: str | None = None
    items: Count = 0
    job_size: float = Field(0.0, ge=0)


# --- the section ---------------------------------------------------------------------------


class FlowProblemRow(FlowItemRef):
    """Why one item's flow facts are incomplete or were corrected; a sentence for the report."""

    reason: str


class HistorySync(ResultModel):
    """One connection's status history in this run: changes the tracker answered, changes new
    to the store, and the error when the history pull failed (the items are reported anyway;
    the next run reads the history again)."""

    connection: str
    changes_read: Count = 0
    changes_stored: Count = 0
    error: str | None = None


class FlowSection(ResultModel):
    """Flow metrics, the Portfolio Kanban and forecasts of one cycle (see the module
    docstring). `as_of` is the instant the metrics were measured at."""

    as_of: UtcDatetime
    window_days: int = Field(ge=1)
    start: FlowStartName = "started"
    value_streams_by: ValueStreamSource = "project"
    efficiency_measured: bool = False
    levels: list[LevelName] = Field(default_factory=list)
    """The levels measured (`flow.levels`), e.g. ["epic", "feature"]."""
    items: Count = 0
    """Items measured: the stored items of those levels, deleted ones left out."""
    items_with_history: Count = 0
    """Of those, the items with at least one stored status change."""
    groups: list[GroupFlow] = Field(default_factory=list)
    """Value streams (by name), then objectives and Key Results in OKR-file order."""
    kanban: PortfolioKanbanView | None = None
    """None when no stages are configured."""
    forecasts: list[ObjectiveForecastRow] = Field(default_factory=list)
    problems: list[FlowProblemRow] = Field(default_factory=list)
    """The first `caps.problems` problems, by connection and key."""
    problem_count: Count = 0
    history: list[HistorySync] = Field(default_factory=list)
    caps: FlowCaps = Field(default_factory=FlowCaps)

    @model_validator(mode="after")
    def _count_covers_problems(self) -> FlowSection:
        if len(self.problems) > self.problem_count:
            raise ValueError(
                f"{len(self.problems)} flow problems listed, problem_count {self.problem_count}"
            )
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def problems_omitted(self) -> int:
        return self.problem_count - len(self.problems)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def objectives_at_risk(self) -> list[str]:
        """Ids of the objectives whose 85% date is after their target: a finding for the
        report, not a failure of the run."""
        return [row.objective_id for row in self.forecasts if row.at_risk]

    def groups_of(self, kind: FlowGroupKind) -> list[GroupFlow]:
        return [group for group in self.groups if group.kind == kind]
