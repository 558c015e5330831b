"""A Key Result's current value from its query, or left manual, and its progress.

The caller runs the query (JQL, WIQL or a filter over stored items) and hands over what it
matched, or why it failed; this module only turns that into a number and says what it means:
- `count`: the number of matched items;
- `sum`: the sum of one numeric field over them; items without a value are left out and counted
  in a note (a missing estimate is not a zero);
- `share_done`: done items over matched items, as a percentage (0–100), the unit Key Results
  such as "90% of services migrated" are written in;
- `manual`: the current value the OKR file (or the tracker item) states.

A query that fails leaves the value unknown with the reason: showing last run's or the file's
number would pass a stale figure off as measured. A query that matches nothing gives 0 for
`count` and `sum`, with a note (an empty result is often a mistyped query), and no value for
`share_done`: the share of nothing is undefined, not 0% or 100%.

Progress is the report's one rule (`KeyResultAlignment.progress_pct` in `spm_sync.core.results`):
from the baseline toward the target, either direction; none without a baseline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from spm_sync.core.domain import ItemRef
from spm_sync.core.results_alignment import KeyResultAlignment


class MeasureKind(StrEnum):
    COUNT = "count"
    SUM = "sum"
    SHARE_DONE = "share_done"
    MANUAL = "manual"


@dataclass(frozen=True, slots=True)
class Measure:
    """How a Key Result measures itself; `field` names the summed field (`sum` only)."""

    kind: MeasureKind
    field: str | None = None

    def __post_init__(self) -> None:
        if self.kind is MeasureKind.SUM and not self.field:
            raise ValueError("a sum measure needs the field to sum")
        if self.kind is not MeasureKind.SUM and self.field is not None:
            raise ValueError(f"a {self.kind.value} measure takes no field")

    @property
    def label(self) -> str:
        return f"sum({self.field})" if self.kind is MeasureKind.SUM else self.kind.value


MANUAL = Measure(MeasureKind.MANUAL)


class MatchedItem(NamedTuple):
    """One item a Key Result's query matched: whether it is done, and the summed field's value
    (None when the item has none)."""

    ref: ItemRef
    done: bool
    value: float | None = None


@dataclass(frozen=True, slots=True)
class QueryResult:
    """What the query matched (possibly nothing)."""

    items: tuple[MatchedItem, ...] = ()


@dataclass(frozen=True, slots=True)
class QueryCount:
    """Only how many items the query matched (the tracker's cheapest answer): enough for a
    `count` measure, not for `sum` or `share_done`. `approximate` when the tracker said its
    count is an estimate."""

    count: int
    approximate: bool = False


@dataclass(frozen=True, slots=True)
class QueryFailed:
    """The query could not be run or answered; `reason` is a sentence for the report."""

    reason: str


QueryOutcome = QueryResult | QueryCount | QueryFailed


@dataclass(frozen=True, slots=True)
class KrMeasurement:
    """A Key Result's value this run. `problems` make the value unusable or unknown; `notes`
    are facts the reader should weigh (both lower the roll-up's confidence)."""

    kr_id: str
    measure: Measure
    current: float | None
    progress_pct: float | None
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def measured(self) -> bool:
        return self.progress_pct is not None


def progress_pct(
    baseline: float | None, target: float | None, current: float | None
) -> float | None:
    """Progress in percent from `baseline` toward `target`; the report's rule, reused so the
    roll-up and the Key Result table can never disagree."""
    row = KeyResultAlignment(id="-", title="-", target=target, current=current, baseline=baseline)
    return row.progress_pct


def measure_key_result(
    kr_id: str,
    measure: Measure,
    outcome: QueryOutcome | None,
    *,
    target: float | None,
    baseline: float | None = None,
    manual_current: float | None = None,
) -> KrMeasurement:
    """The Key Result's current value and progress. `outcome` is ignored for a manual measure;
    for the others None means the query was not run (reported as a problem)."""
    problems: list[str] = []
    notes: list[str] = []
    if measure.kind is MeasureKind.MANUAL:
        current = manual_current
        if current is None:
            problems.append("no current value: state it, or give the key result a query")
    elif outcome is None:
        current = None
        problems.append(f"the {measure.label} query was not run")
    elif isinstance(outcome, QueryFailed):
        current = None
        problems.append(f"the {measure.label} query failed: {outcome.reason}")
    elif isinstance(outcome, QueryCount):
        current = _from_count(measure, outcome, problems, notes)
    else:
        current = _evaluate(measure, outcome.items, problems, notes)
    progress = progress_pct(baseline, target, current)
    if current is not None and progress is None:
        problems.append(_why_no_progress(target, baseline))
    return KrMeasurement(kr_id, measure, current, progress, tuple(problems), tuple(notes))


def _evaluate(
    measure: Measure, items: Sequence[MatchedItem], problems: list[str], notes: list[str]
) -> float | None:
    if measure.kind is MeasureKind.SHARE_DONE:
        if not items:
            problems.append(
                "the share_done query matched no items: the share of nothing is unknown"
            )
            return None
        return round(100.0 * sum(1 for item in items if item.done) / len(items), 1)
    if not items:
        notes.append(f"the {measure.label} query matched no items: taken as 0")
        return 0.0
    if measure.kind is MeasureKind.COUNT:
        return float(len(items))
    values = [item.value for item in items if item.value is not None and math.isfinite(item.value)]
    missing = len(items) - len(values)
    if missing:
        notes.append(
            f"{missing} of {len(items)} matched items have no usable {measure.field}: "
            "left out of the sum"
        )
    return float(sum(values))


def _from_count(
    measure: Measure, outcome: QueryCount, problems: list[str], notes: list[str]
) -> float | None:
    if measure.kind is not MeasureKind.COUNT:
        problems.append(
            f"the {measure.label} query was answered with a count only: "
            f"{measure.label} needs the matched items"
        )
        return None
    if outcome.approximate:
        notes.append("the tracker's count is an estimate")
    if outcome.count == 0:
        notes.append("the count query matched no items: taken as 0")
    return float(max(0, outcome.count))


def _why_no_progress(target: float | None, baseline: float | None) -> str:
    if target is None:
        return "no target: progress cannot be measured"
    if baseline is None:
        return "no baseline: the direction toward the target is unknown, so progress is not shown"
    return "baseline equals target: progress cannot be measured"
