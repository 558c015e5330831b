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

from collections import Counter
from typing import Annotated, Any, Literal, get_args

from pydantic import BeforeValidator, Field, computed_field, model_validator

from connectors.base import RequestStats
from spm_sync.domain import Level, PlannedWrite, StatusCategory, WorkItem, WriteField, WriteResult
from spm_sync.result_types import Count, Percent, ResultModel, UtcDatetime
from spm_sync.results_change import OrphanChanges, WriteTally
from spm_sync.results_connections import ConnectionFigures
from spm_sync.results_flow import CoverageBar, FlowSection
from spm_sync.results_portfolio import PortfolioSection

SCHEMA_VERSION: Literal[2] = 2
"""2: capped Key Result items and write rows with their totals as fields, and `caps`. Version 1
documents (every row, totals derived) are still read."""
KR_ITEMS_CAP = 100
"""Items listed per Key Result: the report's full file shows them, the email fewer."""
WRITES_CAP = 500
"""Write rows listed; failures and conflicts come first, so they are never the ones left out."""


def _level_label(value: object) -> object:
    """Accept `Level` members, their names or labels; store the label ("epic") for readable
    JSON that survives a reordering of the enum."""
    if isinstance(value, Level):
        return value.label
    if isinstance(value, str):
        return value.strip().lower()
    return value


LevelLabel = Annotated[
    Literal["task", "story", "feature", "epic", "initiative"], BeforeValidator(_level_label)
]
AlignmentVia = Literal["label", "link", "parent", "rule"]
WriteRowStatus = Literal["planned", "written", "unchanged", "conflict", "failed"]
WriteRowValue = float | int | str | tuple[str, ...] | None


# --- sync health -----------------------------------------------------------------------------


def _percent_text(share: float) -> str:
    """97.5%, 20%: one decimal at most, so a share just over a limit never reads as equal."""
    return f"{share * 100:.1f}".removesuffix(".0") + "%"


class DeletionCheck(ResultModel):
    """One connection's look for deleted items in this run (its full sync, or the key scan of
    an incremental run) and what the mass-deletion guard (`spm_sync.deletion_guard`) made of
    it: the stored items that the answer lacks are marked deleted, or none are."""

    expected: Count
    """Items stored in scope before this run."""
    fetched: Count
    """Keys the tracker answered for the scope."""
    missing: Count
    """Stored items the answer lacks: deleted or moved out of scope, if the answer is right."""
    max_share: float = Field(ge=0, le=1)
    """The connection's `max_deletion_share`."""
    applied: bool
    """The missing items were marked deleted; False: the guard held them back."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def share(self) -> float:
        """The share of the stored items the answer would delete (0..1)."""
        return self.missing / self.expected if self.expected else 0.0

    @property
    def problem(self) -> str | None:
        """The line the run's problems carry when deletions were held back."""
        if self.applied:
            return None
        answered = self.expected - self.missing
        return (
            f"deletions held back: the tracker answered {answered:,} of {self.expected:,} stored "
            f"items ({_percent_text(self.share)} would be deleted, limit "
            f"{_percent_text(self.max_share)}); nothing was marked deleted or written back. "
            "Check the scope and permissions; to accept, raise max_deletion_share (1 = any) "
            "for one run"
        )


class ConnectionHealth(ResultModel):
    """How pulling (and pushing) one connection went. Numbers come from `RequestStats`."""

    name: str
    kind: str
    """The config `kind`: "jira" or "azure_devops"."""
    items_pulled: Count = 0
    sync: Literal["full", "incremental"] = "full"
    deleted_detected: Count = 0
    """Items gone from the tracker or moved out of scope, found by the full key scan, and
    marked deleted (0 when the mass-deletion guard held them back: see `deletions`)."""
    requests_total: Count = 0
    requests_by_endpoint: dict[str, Count] = Field(default_factory=dict)
    """Keys like "POST /rest/api/3/search/jql" (ids folded), see `connectors.http`."""
    retries: Count = 0
    throttled: Count = 0
    waited_seconds: float = Field(0.0, ge=0)
    rate_limit: dict[str, str] = Field(default_factory=dict)
    """The last rate-limit headers the tracker sent (X-RateLimit-Remaining, Retry-After...)."""
    duration_seconds: float = Field(0.0, ge=0)
    warnings: list[str] = Field(default_factory=list)
    """Unknown fields, unparseable values, skipped items: things a human should look at."""
    error: str | None = None
    """Set when the connection failed; the cycle then has status "partial" or "failed"."""
    deletions: DeletionCheck | None = None
    """This run's deletion check; None when none was due (an incremental run between scans)."""

    @model_validator(mode="before")
    @classmethod
    def _total_from_endpoints(cls, data: Any) -> Any:
        if isinstance(data, dict) and "requests_total" not in data:
            by_endpoint = data.get("requests_by_endpoint") or {}
            return {**data, "requests_total": sum(by_endpoint.values())}
        return data

    @property
    def deletions_held_back(self) -> bool:
        return self.deletions is not None and not self.deletions.applied

    @property
    def problem(self) -> str | None:
        """What the run's problems say about this connection: its error, or deletions held
        back (the connection was pulled, but nothing was written to it)."""
        return self.error or (self.deletions.problem if self.deletions is not None else None)

    @classmethod
    def from_stats(
        cls, name: str, kind: str, stats: RequestStats, **fields: Any
    ) -> ConnectionHealth:
        """Health from a connector's `RequestStats`; pass items_pulled, duration etc. as fields."""
        return cls(
            name=name,
            kind=kind,
            requests_total=stats.requests,
            requests_by_endpoint=dict(sorted(stats.by_endpoint.items())),
            retries=stats.retries,
            throttled=stats.throttled,
            waited_seconds=round(stats.waited_seconds, 3),
            rate_limit=dict(stats.rate_limit),
            **fields,
        )


# --- alignment -------------------------------------------------------------------------------


class AlignedItem(ResultModel):
    """One epic/feature (or story) that moves a Key Result, and the evidence why."""

    connection: str
    key: str
    title: str
    level: LevelLabel | None = None
    status_category: StatusCategory
    job_size: float | None = Field(None, ge=0)
    url: str | None = None
    via: AlignmentVia
    path: tuple[str, ...] = ()
    """The evidence chain, e.g. ("PAY-12", "PAY-3") when PAY-12 inherits from its parent PAY-3."""

    @classmethod
    def from_work_item(
        cls, item: WorkItem, via: AlignmentVia, path: tuple[str, ...] = ()
    ) -> AlignedItem:
        return cls(
            connection=item.connection,
            key=item.key,
            title=item.title,
            level=item.level,
            status_category=item.status_category,
            job_size=item.job_size,
            url=item.url,
            via=via,
            path=path,
        )


STATUS_ORDER = {StatusCategory.IN_PROGRESS: 0, StatusCategory.TODO: 1, StatusCategory.DONE: 2}


def aligned_item_order(
    status_category: StatusCategory, job_size: float | None, key: str
) -> tuple[int, float, str]:
    """The order a Key Result's items are listed (and capped) in: work in progress first, then
    what is next, then what is done; bigger job size before smaller."""
    return (STATUS_ORDER[status_category], -(job_size or 0.0), key)


class KeyResultAlignment(ResultModel):
    """One Key Result and the work that moves it. `items` may be capped (see the module
    docstring); `item_count`, `status_mix` and `job_size_total` always cover every item, and
    default to the figures of `items` when the list is complete."""

    id: str
    title: str
    target: float | None = None
    current: float | None = None
    baseline: float | None = None
    items: list[AlignedItem] = Field(default_factory=list)
    """The first items in `aligned_item_order`, at most `caps.kr_items`."""
    item_count: Count = 0
    status_mix: dict[StatusCategory, Count] = Field(default_factory=dict)
    """Items per status category, every category present (zeros included)."""
    job_size_total: float = Field(0.0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _totals_from_complete_items(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "item_count" in data:
            return data
        items = [AlignedItem.model_validate(item) for item in data.get("items") or ()]
        counts = Counter(item.status_category for item in items)
        return {
            "status_mix": {category: counts.get(category, 0) for category in StatusCategory},
            "job_size_total": sum(item.job_size or 0.0 for item in items),
            **data,
            "items": items,
            "item_count": len(items),
        }

    @model_validator(mode="after")
    def _totals_cover_the_items(self) -> KeyResultAlignment:
        self.status_mix = {c: self.status_mix.get(c, 0) for c in StatusCategory}
        if sum(self.status_mix.values()) != self.item_count:
            raise ValueError(
                f"{self.id}: status_mix adds up to {sum(self.status_mix.values())}, "
                f"not item_count {self.item_count}"
            )
        listed = Counter(item.status_category for item in self.items)
        short = [c.value for c in StatusCategory if listed.get(c, 0) > self.status_mix[c]]
        if len(self.items) > self.item_count or short:
            raise ValueError(
                f"{self.id}: {len(self.items)} items listed, more than the totals "
                f"(item_count {self.item_count}, status_mix {self.status_mix}) allow"
            )
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def items_omitted(self) -> int:
        """Items counted in the totals but not listed (the list was capped)."""
        return self.item_count - len(self.items)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def uncovered(self) -> bool:
        """No active work moves this Key Result: nothing aligned, or only Done items (finished
        work no longer moves a number). `spm_sync.alignment` also counts aligned work outside
        the configured scope statuses as inactive; the document knows only status categories,
        so the two agree under the default scope (every status but Done)."""
        return self.status_mix[StatusCategory.DONE] == self.item_count

    @computed_field  # type: ignore[prop-decorator]
    @property
    def progress_pct(self) -> float | None:
        """How far current has come from baseline toward target, in percent (over 100 when it
        went past, negative when it went the wrong way). None without all three: without a
        baseline the direction is unknown ("reach 250 partners" and "cut load time to 800
        ms" look alike)."""
        if self.baseline is None or self.target is None or self.current is None:
            return None
        if self.target == self.baseline:
            return None
        return round(100.0 * (self.current - self.baseline) / (self.target - self.baseline), 1)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def at_risk(self) -> bool:
        """No active work moves it and its target is not known to be met: nothing aligned, or
        all its work done while it is short of target (or its progress cannot be measured)."""
        return self.uncovered and not self.target_met

    @property
    def target_met(self) -> bool:
        """Known to have reached its target (which takes a baseline, see `progress_pct`)."""
        return self.progress_pct is not None and self.progress_pct >= 100.0


class ObjectiveAlignment(ResultModel):
    id: str
    title: str
    owner: str | None = None
    period: str | None = None
    key_results: list[KeyResultAlignment] = Field(default_factory=list)


class Orphan(ResultModel):
    """An in-scope item that moves no Key Result, with the reason the engine gave."""

    connection: str
    team: str | None = None
    key: str
    title: str
    type: str
    level: LevelLabel | None = None
    status_category: StatusCategory | None = None
    job_size: float | None = Field(None, ge=0)
    url: str | None = None
    reason: str

    @classmethod
    def from_work_item(cls, item: WorkItem, reason: str) -> Orphan:
        return cls(
            connection=item.connection,
            team=item.team,
            key=item.key,
            title=item.title,
            type=item.type,
            level=item.level,
            status_category=item.status_category,
            job_size=item.job_size,
            url=item.url,
            reason=reason,
        )


class AlignmentSummary(ResultModel):
    """The alignment engine's figures. Percentages are None when nothing is in scope."""

    alignment_pct_items: Percent | None = None
    alignment_pct_job_size: Percent | None = None
    in_scope_count: Count = 0
    aligned_count: Count = 0
    in_scope_job_size: float = Field(0.0, ge=0)
    aligned_job_size: float = Field(0.0, ge=0)
    objectives: list[ObjectiveAlignment] = Field(default_factory=list)
    orphans: list[Orphan] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    """E.g. a label that names no known Key Result, a rule that matched nothing."""
    by_connection: list[ConnectionFigures] = Field(default_factory=list)
    """The same figures per connection, which add up to the totals above
    (`spm_sync.results_connections`); empty in older documents."""

    @model_validator(mode="after")
    def _aligned_within_scope(self) -> AlignmentSummary:
        if self.aligned_count > self.in_scope_count:
            raise ValueError(
                f"aligned_count {self.aligned_count} exceeds in_scope_count {self.in_scope_count}"
            )
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def uncovered_key_results(self) -> list[str]:
        """Ids of the Key Results that nothing moves."""
        return [
            key_result.id
            for objective in self.objectives
            for key_result in objective.key_results
            if key_result.uncovered
        ]


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


class WriteRow(ResultModel):
    """One planned write and, in apply mode, what became of it (the audit log)."""

    connection: str
    key: str
    field: WriteField
    old: WriteRowValue = None
    new: WriteRowValue = None
    expected_revision: str
    status: WriteRowStatus = "planned"
    error: str | None = None

    @classmethod
    def from_planned(
        cls, write: PlannedWrite, status: str = "planned", error: str | None = None
    ) -> WriteRow:
        """The row of `write`; `status` is an audit or `WriteStatus` value (validated)."""
        return cls(
            connection=write.connection,
            key=write.item_key,
            field=write.field,
            old=write.old,
            new=write.new,
            expected_revision=write.expected_revision,
            status=status,
            error=error,
        )

    @classmethod
    def from_result(cls, result: WriteResult) -> WriteRow:
        return cls.from_planned(result.write, result.status.value, result.error)


WRITE_STATUS_ORDER: dict[str, int] = {
    "failed": 0,
    "conflict": 1,
    "written": 2,
    "planned": 3,
    "unchanged": 4,
}
"""The order write rows are listed (and capped) in: what needs a human first."""


def write_row_order(row: WriteRow) -> tuple[int, str, str, str]:
    return (WRITE_STATUS_ORDER[row.status], row.connection, row.key, row.field.value)


class WriteLog(ResultModel):
    """The run's writes: `counts` covers every write; `rows` may be capped (see the module
    docstring) and `counts` defaults to the figures of `rows` when the list is complete."""

    rows: list[WriteRow] = Field(default_factory=list)
    """The first writes in `write_row_order`, at most `caps.writes`."""
    counts: dict[WriteRowStatus, Count] = Field(default_factory=dict)
    """Writes per status, every status present."""
    by_target: list[WriteTally] = Field(default_factory=list)
    """Every write counted per connection and field (empty in older documents)."""

    @model_validator(mode="before")
    @classmethod
    def _counts_from_complete_rows(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "counts" in data:
            return data
        rows = [WriteRow.model_validate(row) for row in data.get("rows") or ()]
        counts = Counter(row.status for row in rows)
        return {**data, "rows": rows, "counts": dict(counts)}

    @model_validator(mode="after")
    def _counts_cover_the_rows(self) -> WriteLog:
        self.counts = {status: self.counts.get(status, 0) for status in get_args(WriteRowStatus)}
        listed = Counter(row.status for row in self.rows)
        short = [status for status, n in listed.items() if n > self.counts[status]]
        if short:
            raise ValueError(
                f"write rows listed with status {', '.join(sorted(short))} outnumber counts "
                f"{self.counts}"
            )
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total(self) -> int:
        """Every write of the run, listed or not."""
        return sum(self.counts.values())

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rows_omitted(self) -> int:
        """Writes counted but not listed (the list was capped)."""
        return self.total - len(self.rows)


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
    """Flow metrics, the Portfolio Kanban and forecasts (`spm_sync.results_flow`); None in
    documents from before the flow stage, or when it could not run."""
    portfolio: PortfolioSection | None = None
    """The OKR tree with measured progress, capacity cut lines and dependency risk
    (`spm_sync.results_portfolio`); None in older documents, or when it could not be built."""
    orphan_changes: OrphanChanges | None = None
    """New and resolved orphans since `previous` (`spm_sync.results_change`); None on a first
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
