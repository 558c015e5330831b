"""Objective progress and confidence, rolled up the OKR tree, with the aligned work under each
objective.

Rules (the report quotes them):
- An objective's parts are its Key Results and its child objectives, each with its weight.
  With no weights, parts count equally. With weights on only some parts, all count equally and
  a note names the parts without one (guessing the missing weights would be inventing them).
  Weights that do not add up to 1 (percentages, points) are scaled to add up to 1, with a note.
  A zero, negative or non-numeric weight is a problem: that part is left out.
- Progress is the weighted mean of the measured parts' progress, each taken between 0% and
  100%: one Key Result past its target does not hide another short of it. A Key Result's own
  progress (in `measures`) is not capped. The weights of the measured parts are scaled to add
  up to 1, so an unmeasured part lowers the confidence, not the progress.
- Confidence (0 to 1) says how much of the objective the progress stands on: the weighted mean
  of the parts' confidence, where a Key Result counts 1 when measured cleanly, 0.5 when
  measured with a problem or a note (a query that matched nothing, items without a value), and
  0 when not measured; a child objective counts its own confidence.
- Aligned work: the distinct items aligned to the Key Results of the objective and of every
  objective below it (an item aligned to two of them counts once), their summed job size and
  the number without one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from spm_sync.core.domain import ItemRef
from spm_sync.engines.portfolio.measures import KrMeasurement
from spm_sync.engines.portfolio.okr_tree import OkrNode, OkrTree

MEASURED_WITH_DOUBTS = 0.5
"""Confidence of a Key Result measured with a problem or a note."""
_TOLERANCE = 1e-9


class AlignedWork(NamedTuple):
    """One item aligned to a Key Result, with its job size (None when it has none)."""

    ref: ItemRef
    job_size: float | None


@dataclass(frozen=True, slots=True)
class WorkTotals:
    """Distinct aligned items, their summed job size, and how many have no usable size."""

    items: int = 0
    job_size: float = 0.0
    unsized: int = 0


@dataclass(frozen=True, slots=True)
class PartRollup:
    """One part of an objective (a Key Result or a child objective) as it counted: `weight` is
    its share after scaling (0 when it was left out), `progress_pct` as measured (uncapped)."""

    id: str
    is_key_result: bool
    weight: float
    progress_pct: float | None
    confidence: float


@dataclass(frozen=True, slots=True)
class ObjectiveRollup:
    id: str
    title: str
    progress_pct: float | None
    confidence: float
    parts: tuple[PartRollup, ...]
    work: WorkTotals
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class KeyResultWork:
    kr_id: str
    work: WorkTotals


@dataclass(frozen=True, slots=True)
class PortfolioRollup:
    """Every objective's roll-up in the tree's depth-first order, and each placed Key Result's
    aligned work."""

    objectives: Mapping[str, ObjectiveRollup]
    key_results: Mapping[str, KeyResultWork]


def roll_up(
    tree: OkrTree,
    measurements: Mapping[str, KrMeasurement],
    aligned: Mapping[str, Iterable[AlignedWork]],
) -> PortfolioRollup:
    """Roll the measured Key Results and their aligned work up the tree.

    `measurements` and `aligned` are keyed by Key Result id as in the tree; a Key Result with
    no measurement counts as not measured (a problem on its objective), one with no aligned
    work has none.
    """
    kr_sizes: dict[str, dict[ItemRef, float | None]] = {}
    for kr_id in tree.key_results:
        kr_sizes[kr_id] = {work.ref: work.job_size for work in aligned.get(kr_id, ())}
    order = [node.id for _, node in tree.walk()]
    rollups: dict[str, ObjectiveRollup] = {}
    sizes: dict[str, dict[ItemRef, float | None]] = {}
    # Children before parents: the reverse of a depth-first order.
    for objective_id in reversed(order):
        node = tree.objectives[objective_id]
        rollups[objective_id], sizes[objective_id] = _objective(
            node, tree, measurements, kr_sizes, rollups, sizes
        )
    return PortfolioRollup(
        objectives={objective_id: rollups[objective_id] for objective_id in order},
        key_results={
            kr_id: KeyResultWork(kr_id, _totals(items)) for kr_id, items in kr_sizes.items()
        },
    )


def _objective(
    node: OkrNode,
    tree: OkrTree,
    measurements: Mapping[str, KrMeasurement],
    kr_sizes: Mapping[str, dict[ItemRef, float | None]],
    rollups: Mapping[str, ObjectiveRollup],
    sizes: Mapping[str, dict[ItemRef, float | None]],
) -> tuple[ObjectiveRollup, dict[ItemRef, float | None]]:
    problems: list[str] = []
    notes: list[str] = []
    parts: list[tuple[str, bool, float | None, float | None, float]] = []
    work: dict[ItemRef, float | None] = {}
    for kr_id in tree.key_results_of.get(node.id, ()):
        measurement = measurements.get(kr_id)
        if measurement is None:
            problems.append(f"key result {kr_id} was not measured this run")
        elif measurement.problems:
            problems += [f"key result {kr_id}: {problem}" for problem in measurement.problems]
        weight = tree.key_results[kr_id].weight
        progress = measurement.progress_pct if measurement else None
        parts.append((kr_id, True, weight, progress, _kr_confidence(measurement)))
        work.update(kr_sizes[kr_id])
    for child_id in tree.children.get(node.id, ()):
        child = rollups[child_id]
        weight = tree.objectives[child_id].weight
        parts.append((child_id, False, weight, child.progress_pct, child.confidence))
        work.update(sizes[child_id])
    if not parts:
        problems.append("has no key results and no child objectives: nothing to measure")
    weights = _weights([(part_id, weight) for part_id, _, weight, _, _ in parts], problems, notes)
    rolled = tuple(
        PartRollup(part_id, is_kr, weights.get(part_id, 0.0), progress, confidence)
        for part_id, is_kr, _, progress, confidence in parts
    )
    return (
        ObjectiveRollup(
            id=node.id,
            title=node.title,
            progress_pct=_weighted_progress(rolled),
            confidence=round(sum(p.weight * p.confidence for p in rolled), 3),
            parts=rolled,
            work=_totals(work),
            problems=tuple(problems),
            notes=tuple(notes),
        ),
        work,
    )


def _kr_confidence(measurement: KrMeasurement | None) -> float:
    if measurement is None or not measurement.measured:
        return 0.0
    if measurement.problems or measurement.notes:
        return MEASURED_WITH_DOUBTS
    return 1.0


def _weights(
    parts: list[tuple[str, float | None]], problems: list[str], notes: list[str]
) -> dict[str, float]:
    """Each usable part's share (adding up to 1); parts left out are absent."""
    usable: list[tuple[str, float | None]] = []
    for part_id, weight in parts:
        if weight is not None and not (math.isfinite(weight) and weight > 0):
            problems.append(
                f"weight {weight:g} of {part_id} is not positive: {part_id} is left out"
            )
        else:
            usable.append((part_id, weight))
    if not usable:
        return {}
    unweighted = [part_id for part_id, weight in usable if weight is None]
    if len(unweighted) == len(usable):
        return {part_id: 1.0 / len(usable) for part_id, _ in usable}
    if unweighted:
        notes.append(f"weights are missing for {', '.join(unweighted)}: every part counts equally")
        return {part_id: 1.0 / len(usable) for part_id, _ in usable}
    total = sum(weight or 0.0 for _, weight in usable)
    if abs(total - 1.0) > _TOLERANCE:
        notes.append(f"weights add up to {total:g}, not 1: scaled to add up to 1")
    return {part_id: (weight or 0.0) / total for part_id, weight in usable}


def _weighted_progress(parts: tuple[PartRollup, ...]) -> float | None:
    measured = [p for p in parts if p.weight > 0 and p.progress_pct is not None]
    total = sum(p.weight for p in measured)
    if not measured or total <= 0:
        return None
    mean = sum(p.weight * min(100.0, max(0.0, p.progress_pct or 0.0)) for p in measured) / total
    return round(mean, 1)


def _totals(items: Mapping[ItemRef, float | None]) -> WorkTotals:
    sized = [
        size for size in items.values() if size is not None and math.isfinite(size) and size > 0
    ]
    return WorkTotals(len(items), float(sum(sized)), len(items) - len(sized))
