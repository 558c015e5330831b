"""Settings of the flow engine, as plain values the config layer fills in.

Status names are matched case-insensitively (trackers and people disagree on case); they are
folded once here, so the engine's lookups stay plain dictionary reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from spm_sync.core.domain import StatusCategory


class FlowClass(StrEnum):
    """The four kinds of flow distribution (SAFe's flow items); OTHER for unmapped types."""

    FEATURE = "feature"
    DEFECT = "defect"
    RISK = "risk"
    DEBT = "debt"
    OTHER = "other"


class FlowStart(StrEnum):
    """Where flow time starts: at creation, or at the first move into an in-progress status."""

    CREATED = "created"
    STARTED = "started"


@dataclass(frozen=True, slots=True)
class Stage:
    """One column of the Portfolio Kanban. `category` says what the stage means for flow:
    TODO stages (funnel, reviewing...) are not started, IN_PROGRESS ones are, DONE ends flow."""

    name: str
    category: StatusCategory


@dataclass(frozen=True, slots=True)
class StageMap:
    """Tracker statuses onto Kanban stages, `stages` in board order (left to right).

    When a status is mapped, its stage's category wins over the tracker's: the portfolio office
    decides what counts as started. An empty map means "no stages configured": the trackers'
    categories alone decide, and no status is reported as unmapped.
    """

    stages: tuple[Stage, ...] = ()
    statuses: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [stage.name for stage in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique, got {names}")
        unknown = sorted({s for s in self.statuses.values() if s not in names})
        if unknown:
            raise ValueError(f"statuses are mapped to unknown stages: {', '.join(unknown)}")
        folded = {status.casefold(): stage for status, stage in self.statuses.items()}
        object.__setattr__(self, "statuses", folded)

    @property
    def configured(self) -> bool:
        return bool(self.stages)

    def stage_of(self, status: str) -> Stage | None:
        name = self.statuses.get(status.casefold())
        return None if name is None else self.stages[self.index(name)]

    def index(self, stage_name: str) -> int:
        for i, stage in enumerate(self.stages):
            if stage.name == stage_name:
                return i
        raise KeyError(stage_name)


@dataclass(frozen=True, slots=True)
class WipLimits:
    """Most cards a column may hold: across the portfolio (`per_stage`) and on one value
    stream's board (`per_stream`, keyed by (value stream, stage))."""

    per_stage: Mapping[str, int] = field(default_factory=dict)
    per_stream: Mapping[tuple[str, str], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for where, limit in (*self.per_stage.items(), *self.per_stream.items()):
            if limit < 0:
                raise ValueError(f"WIP limit of {where} must not be negative, got {limit}")


@dataclass(frozen=True, slots=True)
class FlowSettings:
    """How flow is measured.

    Flow efficiency is computed only when `active_statuses` or `wait_statuses` is set: it is
    active time over active plus wait time within the flow interval; time in a status in neither
    set is left out (it is unknown whether work happened). `flow_classes` maps an item type
    (case-insensitive) to its flow-distribution class. `window_days` is how far back velocity,
    flow time and distribution look; `ageing_named` is how many of the oldest items in progress a
    group names.
    """

    stage_map: StageMap = field(default_factory=StageMap)
    start: FlowStart = FlowStart.STARTED
    active_statuses: frozenset[str] = frozenset()
    wait_statuses: frozenset[str] = frozenset()
    flow_classes: Mapping[str, FlowClass] = field(default_factory=dict)
    window_days: int = 84
    ageing_named: int = 10

    def __post_init__(self) -> None:
        if self.window_days <= 0:
            raise ValueError(f"the flow window must be at least one day, got {self.window_days}")
        both = {s.casefold() for s in self.active_statuses} & {
            s.casefold() for s in self.wait_statuses
        }
        if both:
            raise ValueError(f"statuses both active and waiting: {', '.join(sorted(both))}")
        for name in ("active_statuses", "wait_statuses"):
            statuses = getattr(self, name)
            object.__setattr__(self, name, frozenset(s.casefold() for s in statuses))
        folded = {kind.casefold(): cls for kind, cls in self.flow_classes.items()}
        object.__setattr__(self, "flow_classes", folded)

    @property
    def measures_efficiency(self) -> bool:
        return bool(self.active_statuses or self.wait_statuses)

    def flow_class(self, item_type: str) -> FlowClass:
        return self.flow_classes.get(item_type.casefold(), FlowClass.OTHER)
