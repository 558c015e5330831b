"""The result document of one cycle: what the pipeline builds, stores and reports.

`CycleResult` is the contract between the pipeline and the report. The pipeline fills it from
the engines' outputs, stores it as JSON in the runs table (`model_dump_json`), writes it for
`spm-sync run --json FILE`, and hands it to `reports.render_report`; `spm-sync report --run ID`
re-renders a past run from the stored JSON (`model_validate_json`).

The document carries what the report and readers of `--json` need, not a copy of the store: a
portfolio of 200,000 items aligns ~86,000 of them and plans ~50,000 writes, which as rows would
cost gigabytes of memory and a document of tens of megabytes per run. So two lists are capped
(`ListCaps`, recorded in the document as `caps`), with their totals kept as fields:
- each Key Result lists its first `caps.kr_items` items in report order (active work first,
  biggest job size first); `item_count`, `status_mix` and `job_size_total` cover all of them.
  Every aligned item of a run, with its evidence, stays in the store (table `alignments`);
- the write log lists its first `caps.writes` rows (failed, conflicts, written, planned,
  unchanged; by connection and key within each); `counts` covers all of them. The complete
  audit log stays in the store (table `writes`); `spm-sync report --run ID` prints it.
Orphans, the WSJF table, WIP lanes and the trend are complete.

Every model forbids unknown keys, so a typo in the pipeline fails loudly. Figures the document
can derive from complete rows (breach flags, uncovered Key Results, the headline) are computed
fields: they appear in the JSON for readers of `--json` files, and are ignored (then
recomputed) when a stored document is read back, so they can never disagree with the rows.
Totals of capped lists are stored fields, checked against the rows the document does carry; a
document without them (schema version 1, uncapped) gets them from its rows.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, computed_field, model_validator

from spm_sync.core.domain import (
    StatusCategory,
)
from spm_sync.core.result_types import Count, LevelLabel, Percent, ResultModel, UtcDatetime
from spm_sync.core.results_alignment import KR_ITEMS_CAP, AlignmentSummary
from spm_sync.core.results_change import OrphanChanges
from spm_sync.core.results_flow import CoverageBar, FlowSection
from spm_sync.core.results_health import ConnectionHealth
from spm_sync.core.results_portfolio import PortfolioSection
from spm_sync.core.results_writes import WRITES_CAP, WriteLog

SCHEMA_VERSION: Literal[2] = 2
"""2: capped Key Result items and write rows with their totals as fields, and `caps`. Version 1
documents (every row, totals derived) are still read."""




# --- WSJF, writes, WIP, trend ----------------------------------------------------------------


class WsjfRow(ResultModel):
    """One scored (or unscorable) item. Ranks are 1-based positions in the rank scope."""

    connection: str
    key: str
    title: str
    level: LevelLabel | None = None
    url: str | None = None
    business_value: float | None = None
    time_criticality: float | None = None
    risk_reduction: float | None = None
    job_size: float | None = None
    cost_of_delay: float | None = None
    wsjf: float | None = None
    old_rank: int | None = Field(None, ge=1)
    new_rank: int | None = Field(None, ge=1)
    reason_unscored: str | None = None
    """What is missing or wrong, e.g. "job_size is empty"; set exactly when `wsjf` is None."""

    @model_validator(mode="after")
    def _reason_when_unscored(self) -> WsjfRow:
        if self.wsjf is None and not self.reason_unscored:
            raise ValueError(f"{self.key}: an unscored row needs reason_unscored")
        return self

    @property
    def scored(self) -> bool:
        return self.wsjf is not None

    @property
    def movement(self) -> int | None:
        """Places moved up (positive) or down (negative); None when either rank is unknown."""
        if self.old_rank is None or self.new_rank is None:
            return None
        return self.old_rank - self.new_rank


class WipLane(ResultModel):
    """Portfolio Kanban row: items per status category of one team or value stream."""

    team: str
    connection: str | None = None
    counts: dict[StatusCategory, Count] = Field(default_factory=dict)
    limits: dict[StatusCategory, Count] = Field(default_factory=dict)
    """Configured WIP limits; a category without a limit is unlimited."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def breaches(self) -> list[StatusCategory]:
        return [
            category
            for category in StatusCategory
            if category in self.limits and self.counts.get(category, 0) > self.limits[category]
        ]


class TrendPoint(ResultModel):
    run_id: str
    finished: UtcDatetime
    alignment_pct_items: Percent | None = None
    alignment_pct_job_size: Percent | None = None
    orphans: Count = 0


# --- headline --------------------------------------------------------------------------------


class HeadlineDelta(ResultModel):
    """Change since the previous run; None where either run has no figure."""

    alignment_pct_items: float | None = None
    alignment_pct_job_size: float | None = None
    orphans: int = 0
    uncovered_key_results: int = 0
    unscored: int = 0
    writes_planned: int = 0
    writes_applied: int = 0
    write_conflicts: int = 0


class Headline(ResultModel):
    """The figures at the top of the report, also stored to compare the next run against."""

    alignment_pct_items: Percent | None = None
    alignment_pct_job_size: Percent | None = None
    orphans: Count = 0
    uncovered_key_results: Count = 0
    unscored: Count = 0
    writes_planned: Count = 0
    writes_applied: Count = 0
    write_conflicts: Count = 0

    def delta(self, previous: Headline | None) -> HeadlineDelta | None:
        """This run minus `previous`; None on a first run."""
        if previous is None:
            return None
        changes: dict[str, float | int | None] = {}
        for name in Headline.model_fields:
            now, before = getattr(self, name), getattr(previous, name)
            changes[name] = None if now is None or before is None else now - before
        for name in ("alignment_pct_items", "alignment_pct_job_size"):
            if changes[name] is not None:
                changes[name] = round(changes[name], 6)  # type: ignore[arg-type]
        return HeadlineDelta(**changes)


class PreviousRun(ResultModel):
    run_id: str
    finished: UtcDatetime
    headline: Headline


# --- the cycle -------------------------------------------------------------------------------


class ListCaps(ResultModel):
    """The longest the capped lists of a document may be (see the module docstring)."""

    kr_items: Count = KR_ITEMS_CAP
    writes: Count = WRITES_CAP


class CycleResult(ResultModel):
    """Everything one cycle found and did. See the module docstring for who fills and reads it."""

    schema_version: Literal[1, 2] = SCHEMA_VERSION
    run_id: str = Field(min_length=1)
    started: UtcDatetime
    finished: UtcDatetime
    status: Literal["ok", "partial", "failed"]
    mode: Literal["plan", "apply"]
    errors: list[str] = Field(default_factory=list)
    """Stage-level failures (a connection that failed also sets its own `error`)."""
    connections: list[ConnectionHealth] = Field(default_factory=list)
    alignment: AlignmentSummary = Field(default_factory=AlignmentSummary)
    wsjf: list[WsjfRow] = Field(default_factory=list)
    """Every scored or unscorable item, in new-rank order (unscored last)."""
    writes: WriteLog = Field(default_factory=WriteLog)
    wip: list[WipLane] = Field(default_factory=list)
    trend: list[TrendPoint] = Field(default_factory=list)
    """Stored runs oldest first, this run included as the last point."""
    previous: PreviousRun | None = None
    """The previous run's headline, for "change since last run"; None on a first run."""
    caps: ListCaps | None = None
    """How the Key Result items and write rows were capped; None: the lists are complete."""
    flow: FlowSection | None = None
    """Flow metrics, the Portfolio Kanban and forecasts (`spm_sync.core.results_flow`); None in
    documents from before the flow stage, or when it could not run."""
    portfolio: PortfolioSection | None = None
    """The OKR tree with measured progress, capacity cut lines and dependency risk
    (`spm_sync.core.results_portfolio`); None in older documents, or when it could not be built."""
    orphan_changes: OrphanChanges | None = None
    """New and resolved orphans since `previous` (`spm_sync.core.results_change`); None on a first
    run and in older documents."""
    undoes: str | None = None
    """Set on the document of an undo run: the run whose writes it restores. Such a run
    aligns and scores nothing, so its report shows only its writes and never becomes the
    latest report (`reports.publish.is_latest_candidate`)."""

    @model_validator(mode="after")
    def _finished_after_started(self) -> CycleResult:
        if self.finished < self.started:
            raise ValueError(f"finished {self.finished} is before started {self.started}")
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def headline(self) -> Headline:
        counts = self.writes.counts
        return Headline(
            alignment_pct_items=self.alignment.alignment_pct_items,
            alignment_pct_job_size=self.alignment.alignment_pct_job_size,
            orphans=len(self.alignment.orphans),
            uncovered_key_results=len(self.alignment.uncovered_key_results),
            unscored=sum(1 for row in self.wsjf if not row.scored),
            writes_planned=self.writes.total,
            writes_applied=counts["written"],
            write_conflicts=counts["conflict"],
        )

    @property
    def problems(self) -> list[str]:
        """What went wrong, one line each: the stage errors, then each failed connection's
        (deletions held back included)."""
        return [*self.errors, *(f"{c.name}: {c.problem}" for c in self.connections if c.problem)]

    @property
    def key_result_coverage(self) -> list[CoverageBar]:
        """The coverage chart's bars: each Key Result's aligned items and job size (totals of
        the alignment part, so capped item lists do not matter), then the orphans' bar."""
        bars = [
            CoverageBar(
                kind="key_result",
                id=key_result.id,
                title=key_result.title,
                objective_id=objective.id,
                items=key_result.item_count,
                job_size=key_result.job_size_total,
            )
            for objective in self.alignment.objectives
            for key_result in objective.key_results
        ]
        orphans = self.alignment.orphans
        bars.append(
            CoverageBar(
                kind="orphans",
                title="Orphans (no Key Result)",
                items=len(orphans),
                job_size=sum(orphan.job_size or 0.0 for orphan in orphans),
            )
        )
        return bars

    @property
    def change(self) -> HeadlineDelta | None:
        """Change since the previous run (None on a first run)."""
        return self.headline.delta(self.previous.headline if self.previous else None)

    def trend_point(self) -> TrendPoint:
        """This run as a point of the trend, for the next run's document."""
        return TrendPoint(
            run_id=self.run_id,
            finished=self.finished,
            alignment_pct_items=self.alignment.alignment_pct_items,
            alignment_pct_job_size=self.alignment.alignment_pct_job_size,
            orphans=len(self.alignment.orphans),
        )
