"""The alignment part of the result document: each Key Result with the work that moves it
(capped at `ListCaps.kr_items` items, totals kept), objectives, orphans and the summary."""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

from pydantic import Field, computed_field, model_validator

from spm_sync.core.domain import (
    StatusCategory,
    WorkItem,
)
from spm_sync.core.result_types import Count, LevelLabel, Percent, ResultModel
from spm_sync.core.results_connections import ConnectionFigures

KR_ITEMS_CAP = 100
"""Items listed per Key Result: the report's full file shows them, the email fewer."""
AlignmentVia = Literal["label", "link", "parent", "rule"]


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
        work no longer moves a number). `spm_sync.engines.alignment` also counts aligned work
        outside the configured scope statuses as inactive; the document knows only status
        categories, so the two agree under the default scope (every status but Done)."""
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
    (`spm_sync.core.results_connections`); empty in older documents."""

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
