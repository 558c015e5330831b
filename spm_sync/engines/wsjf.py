"""WSJF scoring: Cost of Delay over job size, and a deterministic rank per backlog.

Cost of Delay = business value + time criticality + risk reduction/opportunity enablement;
WSJF = Cost of Delay / job size (SAFe). Items whose inputs are missing or wrong are never dropped
and never scored as zero: they get a reason that names the inputs and rank after every scored
item, so the report shows what to fix.

The order is decided on the exact score. Rounding (`decimals`) is only for what people see and
what is written back: ordering on rounded scores put 34/13 = 2.615 ahead of 21/8 = 2.625 (both
2.62, and the tie-break prefers the higher Cost of Delay), which is the wrong way round.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import NamedTuple

from spm_sync.core.domain import WSJF_INPUTS, Level, StatusCategory, WorkItem
from spm_sync.engines.bulk import paused_gc
from spm_sync.engines.ranking import natural_key

MODIFIED_FIBONACCI: tuple[float, ...] = (1, 2, 3, 5, 8, 13, 20, 40, 100)
"""The estimation scale SAFe uses for the WSJF inputs."""

INPUT_NAMES: dict[str, str] = {
    "business_value": "business value",
    "time_criticality": "time criticality",
    "risk_reduction": "risk reduction",
    "job_size": "job size",
}


@dataclass(frozen=True, slots=True)
class WsjfRules:
    """What to score and how (the engine's side of the config's `wsjf:` section,
    `spm_sync.config.model.WsjfSettings`; `spm_sync.config.engine_settings` maps one to the other).

    `levels`: epics by default (features are mostly estimated by teams without WSJF inputs).
    `status_categories`: Done work has no delay left to cost, so by default it is neither scored
    nor ranked (re-ranking finished epics would only produce writes nobody needs).
    `portfolio_rank`: also rank across all connections, for the report's portfolio view.
    `decimals`: the rounding of the score and Cost of Delay shown and written back; never used
    to order.
    `tie_tolerance`: scores within this distance of the highest score of their group count as
    equal and are ordered by the tie-breaks (higher Cost of Delay, smaller job size, key). 0 (the
    default) ties only equal scores; a small tolerance keeps near-equal items from swapping
    places on every tiny re-estimate.
    """

    levels: tuple[Level, ...] = (Level.EPIC,)
    status_categories: tuple[StatusCategory, ...] = (
        StatusCategory.TODO,
        StatusCategory.IN_PROGRESS,
    )
    snap_to_scale: bool = False
    decimals: int = 2
    portfolio_rank: bool = True
    tie_tolerance: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.decimals <= 6:
            raise ValueError(f"WSJF decimals must be between 0 and 6, not {self.decimals}")
        if not (math.isfinite(self.tie_tolerance) and self.tie_tolerance >= 0):
            raise ValueError(f"WSJF tie tolerance must be 0 or more, not {self.tie_tolerance}")
        if not self.levels:
            raise ValueError("WSJF levels must name at least one level")


class Score(NamedTuple):
    """One item's WSJF, or the reason it has none (a named tuple: a backlog has many).

    Inputs are the values used (after snapping); `cost_of_delay` and `wsjf` are rounded to the
    settings' decimals for display and write-back, `exact_wsjf` is the unrounded score the order
    was decided on (two items shown with the same rounded score can therefore differ in rank).
    Rounding is Python's `round` (half to even on the binary value), the same rule the planner
    uses to compare with the tracker's stored score. `rank` is 1-based within the connection's
    backlog; `portfolio_rank` across all connections.
    """

    connection: str
    item_key: str
    level: Level | None
    business_value: float | None
    time_criticality: float | None
    risk_reduction: float | None
    job_size: float | None
    cost_of_delay: float | None
    wsjf: float | None
    rank: int
    portfolio_rank: int | None = None
    reason: str | None = None
    exact_wsjf: float | None = None

    @property
    def scored(self) -> bool:
        return self.wsjf is not None


def snap(value: float, scale: Sequence[float] = MODIFIED_FIBONACCI) -> float:
    """The nearest scale value; a value halfway between two goes up (4 → 5, 30 → 40).

    Up, because underestimating value or size is the more common error, and a fixed rule keeps
    scores reproducible. Values above the scale become its top, positive values below it its
    bottom; 0 stays 0 (an honest "no value" has no place on the scale, and a zero job size is
    unscorable before snapping anyway).
    """
    if value <= 0:
        return value
    index = bisect_left(scale, value)
    if index == 0:
        return float(scale[0])
    if index == len(scale):
        return float(scale[-1])
    lower, upper = scale[index - 1], scale[index]
    return float(upper if value - lower >= upper - value else lower)


def unscorable_reason(item: WorkItem) -> str | None:
    """Why `item` cannot be scored, naming each input; None when it can.

    Problems the connector found (`field_problems`, e.g. "'high' is not a number") come first, in
    input order, then invalid values, then the list of missing inputs.
    """
    problems: list[str] = []
    missing: list[str] = []
    for name in WSJF_INPUTS:
        label = INPUT_NAMES[name]
        value: float | None = getattr(item, name)
        if name in item.field_problems:
            problems.append(f"{label}: {item.field_problems[name]}")
        elif value is None:
            missing.append(label)
        elif not math.isfinite(value):
            problems.append(f"{label} is not a finite number ({value})")
        elif value < 0:
            problems.append(f"{label} is negative ({value:g})")
        elif name == "job_size" and value == 0:
            problems.append("job size is 0")
    if missing:
        problems.append("missing: " + ", ".join(missing))
    return "; ".join(problems) or None


Inputs = tuple[float | None, float | None, float | None, float | None]
"""(business value, time criticality, risk reduction, job size) of one item."""
Evaluation = tuple[Inputs, float | None, float | None, str | None]
"""(inputs as used, cost of delay, WSJF, reason if unscorable) of one item, unrounded."""


def evaluate(item: WorkItem, settings: WsjfRules) -> Evaluation:
    """One item's inputs (snapped if configured), exact Cost of Delay and WSJF, or why it has
    none."""
    raw: Inputs = (item.business_value, item.time_criticality, item.risk_reduction, item.job_size)
    reason = unscorable_reason(item)
    if reason is not None:  # keep what is usable for the report; NaN/inf are named in the reason
        return _finite_or_none(raw), None, None, reason
    business_value, time_criticality, risk_reduction, job_size = raw
    if business_value is None or time_criticality is None or risk_reduction is None or not job_size:
        raise AssertionError(f"{item.key}: unscorable_reason let an incomplete item through")
    if settings.snap_to_scale:
        business_value, time_criticality = snap(business_value), snap(time_criticality)
        risk_reduction, job_size = snap(risk_reduction), snap(job_size)
    inputs: Inputs = (business_value, time_criticality, risk_reduction, job_size)
    cost_of_delay = business_value + time_criticality + risk_reduction
    return inputs, cost_of_delay, cost_of_delay / job_size, None


def _finite_or_none(values: Inputs) -> Inputs:
    a, b, c, d = (value if value is None or math.isfinite(value) else None for value in values)
    return a, b, c, d


_Row = tuple[tuple[object, ...], WorkItem, Evaluation]
"""(tie-break key, item, evaluation) of one item being ordered."""


@paused_gc()
def score_items(items: Iterable[WorkItem], settings: WsjfRules | None = None) -> list[Score]:
    """Score every item of the configured levels and statuses, ranked per connection.

    Order: exact WSJF desc (scores within `tie_tolerance` of their group's highest count as
    equal), then higher Cost of Delay, then smaller job size, then the item key in natural order
    ("PAY-9" before "PAY-10", see `natural_key`), then the connection name; unscorable items
    after all scored ones, by natural key then connection. Returns the scores ordered by
    connection name, then rank.
    """
    settings = settings or WsjfRules()
    levels, statuses = frozenset(settings.levels), frozenset(settings.status_categories)
    scored: list[_Row] = []
    unscored: list[_Row] = []
    for item in items:
        if item.level not in levels or item.status_category not in statuses:
            continue
        evaluation = evaluate(item, settings)
        inputs, cost_of_delay, wsjf, _ = evaluation
        key = natural_key(item.key)
        if wsjf is None or cost_of_delay is None:
            unscored.append(((key, item.connection), item, evaluation))
        else:
            scored.append(((-cost_of_delay, inputs[3], key, item.connection), item, evaluation))
    unscored.sort(key=itemgetter(0))
    rows = wsjf_order(scored, settings.tie_tolerance) + unscored
    portfolio = settings.portfolio_rank
    ranked = sorted(
        ((row[1], row[2], place if portfolio else None) for place, row in enumerate(rows, 1)),
        key=lambda entry: entry[0].connection,  # stable: keeps the WSJF order within each
    )
    ranks: dict[str, int] = {}
    scores: list[Score] = []
    decimals = settings.decimals
    for item, (inputs, cost_of_delay, wsjf, reason), place in ranked:
        rank = ranks[item.connection] = ranks.get(item.connection, 0) + 1
        scores.append(
            Score(
                item.connection,
                item.key,
                item.level,
                *inputs,
                None if cost_of_delay is None else round(cost_of_delay, decimals),
                None if wsjf is None else round(wsjf, decimals),
                rank,
                place,
                reason,
                wsjf,
            )
        )
    return scores


def wsjf_order(rows: list[_Row], tolerance: float) -> list[_Row]:
    """Scored rows by exact WSJF, highest first; ties (within `tolerance`) by their tie-break key.

    A group starts at its highest score and takes every next score within `tolerance` of it, so
    a group never spans more than the tolerance (chaining near-equal scores could otherwise
    make a whole backlog one tie).
    """

    def exact(row: _Row) -> float:
        wsjf = row[2][2]
        assert wsjf is not None
        return wsjf

    ordered = sorted(rows, key=lambda row: (-exact(row), row[0]))
    if tolerance <= 0:
        return ordered
    result: list[_Row] = []
    group: list[_Row] = []
    for row in ordered:
        if group and exact(group[0]) - exact(row) > tolerance:
            result += sorted(group, key=itemgetter(0))
            group = []
        group.append(row)
    return result + sorted(group, key=itemgetter(0))


def portfolio_order(scores: Iterable[Score]) -> list[Score]:
    """Scores across all connections in portfolio order (requires `portfolio_rank`)."""
    ranked = list(scores)
    if any(score.portfolio_rank is None for score in ranked):
        raise ValueError("scores were computed without portfolio_rank")
    return sorted(ranked, key=lambda score: score.portfolio_rank or 0)
