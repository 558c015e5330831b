"""The `flow:` section of the config: value streams, Portfolio Kanban stages and their tracker
statuses, WIP limits, flow classes, the window, and the forecast.

Validated strictly like the rest of the config (unknown keys, a status on two stages, a limit
on an unknown stage and an unknown flow class are errors naming the key), then turned into the
flow engine's settings (`spm_sync.engines.flow.settings`) by `FlowConfig.settings()` and friends.

The default stages are SAFe's Portfolio Kanban, funnel → reviewing → analyzing → portfolio
backlog → implementing → done, with the statuses of standard Jira workflows and the Agile,
Scrum and Basic processes of Azure DevOps (and of the sandboxes) mapped onto them. A status
mapped to a stage takes the stage's category: "Resolved" is Azure DevOps's "built, not yet
accepted" and sits in implementing; a Jira workflow whose "Resolved" means finished maps it
to done in its own `stages`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from connectors.settings import StrictModel
from spm_sync.config.sections import LevelName, StatusCategoryName
from spm_sync.config.validation import scalar_text
from spm_sync.core.domain import Level, StatusCategory
from spm_sync.engines.flow.forecast import DEFAULT_TRIALS
from spm_sync.engines.flow.settings import (
    FlowClass,
    FlowSettings,
    FlowStart,
    Stage,
    StageMap,
    WipLimits,
)

Name = Annotated[str, BeforeValidator(scalar_text), Field(min_length=1)]
FlowClassName = Literal["feature", "defect", "risk", "debt"]
TODO, IN_PROGRESS, DONE = StatusCategory.TODO, StatusCategory.IN_PROGRESS, StatusCategory.DONE

STANDARD_STAGES: tuple[tuple[str, StatusCategory, tuple[str, ...]], ...] = (
    ("funnel", TODO, ("Funnel", "New", "Open", "To Do", "Proposed")),
    ("reviewing", TODO, ("Reviewing",)),
    ("analyzing", TODO, ("Analyzing", "Analysis", "Design")),
    (
        "portfolio backlog",
        TODO,
        ("Portfolio Backlog", "Backlog", "Selected for Development", "Approved", "Ready"),
    ),
    (
        "implementing",
        IN_PROGRESS,
        (
            "Implementing",
            "In Progress",
            "Active",
            "Committed",
            "Doing",
            "In Review",
            "Resolved",
            "Reopened",
        ),
    ),
    ("done", DONE, ("Done", "Closed", "Completed", "Removed", "Cancelled", "Won't Do")),
)
"""SAFe's Portfolio Kanban stages, their categories and default statuses."""

DEFAULT_FLOW_CLASSES: dict[str, FlowClassName] = {
    "Initiative": "feature",
    "Epic": "feature",
    "Capability": "feature",
    "Feature": "feature",
    "Story": "feature",
    "User Story": "feature",
    "Product Backlog Item": "feature",
    "Requirement": "feature",
    "Task": "feature",
    "Sub-task": "feature",
    "Bug": "defect",
    "Defect": "defect",
    "Incident": "defect",
    "Problem": "defect",
    "Risk": "risk",
    "Impediment": "risk",
    "Vulnerability": "risk",
    "Technical Debt": "debt",
    "Tech Debt": "debt",
    "Debt": "debt",
    "Enabler": "debt",
}
"""Item types of standard Jira and Azure DevOps processes by flow class; the config's
`flow_classes` are merged over these."""


class StageEntry(StrictModel):
    """One column of the Portfolio Kanban and the tracker statuses that put an item in it."""

    name: Name
    statuses: list[Name] = Field(default_factory=list)
    category: StatusCategoryName
    """Whether the stage counts as not started, started or done; may be left out for the
    standard stage names."""

    @model_validator(mode="before")
    @classmethod
    def _standard_category(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("category") is not None:
            return data
        name = data.get("name")
        standard = {stage: category for stage, category, _ in STANDARD_STAGES}
        if isinstance(name, str) and name.strip().casefold() in standard:
            return {**data, "category": standard[name.strip().casefold()]}
        if isinstance(name, str):
            allowed = ", ".join(category.value for category in StatusCategory)
            raise ValueError(
                f"stage {name!r} is not a standard Portfolio Kanban stage "
                f"({', '.join(standard)}): give its category ({allowed})"
            )
        return data


def _standard_stages() -> list[StageEntry]:
    return [
        StageEntry(name=name, category=category, statuses=list(statuses))
        for name, category, statuses in STANDARD_STAGES
    ]


class ValueStreams(StrictModel):
    """What groups items into value streams (one board and one set of metrics each)."""

    by: Literal["project", "area_path", "component", "label", "connection"] = "project"
    label_prefix: Name | None = None
    """With `by: label`: labels starting with this prefix name the stream (prefix removed)."""

    @model_validator(mode="after")
    def _prefix_with_labels(self) -> ValueStreams:
        if self.by == "label" and self.label_prefix is None:
            raise ValueError("by: label needs label_prefix (e.g. vs-), or every label is a stream")
        if self.by != "label" and self.label_prefix is not None:
            raise ValueError(f"label_prefix is only read with by: label, not by: {self.by}")
        return self


class FlowWipLimits(StrictModel):
    per_stage: dict[Name, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    """Most cards a stage may hold across the portfolio."""
    per_value_stream: dict[Name, dict[Name, Annotated[int, Field(ge=0)]]] = Field(
        default_factory=dict
    )
    """Most cards a stage may hold on one value stream's board: {stream: {stage: n}}."""


class ForecastSettings(StrictModel):
    trials: int = Field(DEFAULT_TRIALS, ge=100, le=1_000_000)
    seed: int | None = None
    """Fixes the random draws, so a forecast can be repeated; unset = a new draw every run."""


class FlowConfig(StrictModel):
    enabled: bool = True
    levels: list[LevelName] = Field(
        default_factory=lambda: [Level.EPIC, Level.FEATURE], min_length=1
    )
    """Levels whose items are measured and put on the board: the portfolio's work."""
    value_streams: ValueStreams = ValueStreams()
    stages: list[StageEntry] = Field(default_factory=_standard_stages)
    wip_limits: FlowWipLimits = FlowWipLimits()
    active_statuses: list[Name] = Field(default_factory=list)
    wait_statuses: list[Name] = Field(default_factory=list)
    flow_classes: dict[Name, FlowClassName] = Field(default_factory=dict)
    window_days: int = Field(84, ge=7, le=3650)
    start: FlowStart = FlowStart.STARTED
    ageing_named: int = Field(10, ge=0, le=100)
    forecast: ForecastSettings = ForecastSettings()

    @field_validator("stages")
    @classmethod
    def _stages_apart(cls, stages: list[StageEntry]) -> list[StageEntry]:
        seen: dict[str, int] = {}
        for index, stage in enumerate(stages):
            first = seen.setdefault(stage.name.casefold(), index)
            if first != index:
                raise ValueError(
                    f"stage {stage.name!r} is named twice (stages[{first}], [{index}])"
                )
        owner: dict[str, tuple[int, str]] = {}
        for index, stage in enumerate(stages):
            for status in stage.statuses:
                where = owner.setdefault(status.casefold(), (index, stage.name))
                if where[0] != index:
                    raise ValueError(
                        f"status {status!r} is mapped to two stages: {where[1]!r} and "
                        f"{stage.name!r}; a status belongs to one stage"
                    )
        return stages

    @field_validator("wip_limits")
    @classmethod
    def _limits_name_stages(cls, limits: FlowWipLimits, info: ValidationInfo) -> FlowWipLimits:
        stages: list[StageEntry] | None = info.data.get("stages")
        if stages is None:
            return limits  # the stages are wrong themselves, and reported so
        names = {stage.name.casefold() for stage in stages}
        known = ", ".join(stage.name for stage in stages) or "none configured"
        unknown = [s for s in limits.per_stage if s.casefold() not in names]
        for stream, per_stage in limits.per_value_stream.items():
            unknown += [
                f"{s} (value stream {stream})" for s in per_stage if s.casefold() not in names
            ]
        if unknown:
            raise ValueError(f"limits of unknown stages: {', '.join(unknown)}; stages: {known}")
        return limits

    @field_validator("wait_statuses")
    @classmethod
    def _waiting_is_not_active(cls, waiting: list[str], info: ValidationInfo) -> list[str]:
        active = {status.casefold() for status in info.data.get("active_statuses") or ()}
        both = sorted({status for status in waiting if status.casefold() in active})
        if both:
            raise ValueError(
                f"statuses both active and waiting: {', '.join(both)}; a status is one or the other"
            )
        return waiting

    def _stage_name(self, name: str) -> str:
        """The stage's name as `stages` spells it (limits may differ in case)."""
        return next(stage.name for stage in self.stages if stage.name.casefold() == name.casefold())

    def stage_map(self) -> StageMap:
        return StageMap(
            stages=tuple(Stage(s.name, s.category) for s in self.stages),
            statuses={status: stage.name for stage in self.stages for status in stage.statuses},
        )

    def limits(self) -> WipLimits:
        limits = self.wip_limits
        return WipLimits(
            per_stage={self._stage_name(s): n for s, n in limits.per_stage.items()},
            per_stream={
                (stream, self._stage_name(stage)): n
                for stream, stages in limits.per_value_stream.items()
                for stage, n in stages.items()
            },
        )

    def classes(self) -> Mapping[str, FlowClass]:
        merged = {**DEFAULT_FLOW_CLASSES, **self.flow_classes}
        return {item_type: FlowClass(name) for item_type, name in merged.items()}

    def settings(self) -> FlowSettings:
        """The flow engine's settings."""
        return FlowSettings(
            stage_map=self.stage_map(),
            start=self.start,
            active_statuses=frozenset(self.active_statuses),
            wait_statuses=frozenset(self.wait_statuses),
            flow_classes=self.classes(),
            window_days=self.window_days,
            ageing_named=self.ageing_named,
        )
