"""Write planning: the fewest writes that bring each tracker in line with the WSJF results.

Pure: scores + the items as pulled + write-back settings in, one `ConnectionPlan` per
connection out. Every write carries the revision it was planned from, so the connector can skip
it as a conflict when a human edited the item since the pull.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from spm_sync.core.domain import (
    ConnectionPlan,
    PlannedWrite,
    RankKind,
    RankMove,
    WorkItem,
    WriteField,
    WriteValue,
)
from spm_sync.engines.bulk import paused_gc
from spm_sync.engines.ranking import (
    JIRA_MAX_ISSUES_PER_RANK_CALL,
    lexorank_placements,
    natural_key,
    numeric_ranks,
    stationary_keys,
)
from spm_sync.engines.wsjf import Score


@dataclass(frozen=True, slots=True)
class PriorityTier:
    """The top `top_percent` of a connection's scored items get `priority` (e.g. 10, "Highest");
    the engine's side of a configured `priority_bands` entry (`PriorityBand` in the config).

    A band covers ceil(N × top_percent / 100) items, so the best item of a small backlog still
    lands in the top band.
    """

    top_percent: float
    priority: str

    def __post_init__(self) -> None:
        if not 0 < self.top_percent <= 100:
            raise ValueError(
                f"priority band top_percent must be in (0, 100], not {self.top_percent}"
            )
        if not self.priority.strip():
            raise ValueError("priority band needs a priority name")


@dataclass(frozen=True, slots=True)
class WritePolicy:
    """What one connection may have written, and how it ranks (the engine's side of a
    connection's `write_back:` section, `spm_sync.config.model.WriteBackSettings`).

    Unscored items never get a score, priority or rank value computed for them and are never
    moved (the scored items are reordered around them); their existing score is left alone
    unless `clear_unscored_scores` (a stale score is visible in the tracker,
    but erasing a value someone may have typed by hand is worse). Scored items below every band
    get `default_priority`, or keep theirs when it is None.
    """

    connection: str
    rank_kind: RankKind = "lexorank"
    score: bool = False
    cost_of_delay: bool = False
    rank: bool = False
    priority_bands: tuple[PriorityTier, ...] = ()
    default_priority: str | None = None
    orphan_label: str | None = None
    clear_unscored_scores: bool = False
    numeric_rank_step: float = 1000.0
    """Spacing for numeric ranks placed before the first or after the last ranked item."""
    numeric_min_gap: float = 1e-6
    """Closer neighbours than this (per item to place between them) trigger a renumbering."""
    max_keys_per_move: int = JIRA_MAX_ISSUES_PER_RANK_CALL

    def __post_init__(self) -> None:
        if self.numeric_rank_step <= 0 or self.numeric_min_gap <= 0:
            raise ValueError("numeric rank step and minimum gap must be positive")
        if self.orphan_label is not None and not self.orphan_label.strip():
            raise ValueError("the orphan label must not be empty")


@paused_gc()
def plan_writes(
    items: Iterable[WorkItem],
    scores: Iterable[Score],
    settings: Iterable[WritePolicy],
    *,
    orphans: Collection[tuple[str, str]] = (),
    decimals: int = 2,
) -> dict[str, ConnectionPlan]:
    """One plan per configured connection. `orphans` holds (connection, key) pairs."""
    items_by_connection: dict[str, list[WorkItem]] = {}
    for item in items:
        items_by_connection.setdefault(item.connection, []).append(item)
    scores_by_connection: dict[str, list[Score]] = {}
    for score in scores:
        scores_by_connection.setdefault(score.connection, []).append(score)
    orphan_keys: dict[str, set[str]] = {}
    for connection, key in orphans:
        orphan_keys.setdefault(connection, set()).add(key)
    return {
        config.connection: plan_connection(
            config,
            items_by_connection.get(config.connection, []),
            scores_by_connection.get(config.connection, []),
            orphan_keys.get(config.connection, set()),
            decimals=decimals,
        )
        for config in settings
    }


def plan_connection(
    settings: WritePolicy,
    items: Sequence[WorkItem],
    scores: Sequence[Score],
    orphan_keys: Collection[str] = (),
    *,
    decimals: int = 2,
) -> ConnectionPlan:
    """The minimal plan for one connection: field writes (sorted by key, then field), then moves."""
    by_key = {item.key: item for item in items if item.connection == settings.connection}
    scores = sorted(
        (score for score in scores if score.connection == settings.connection),
        key=lambda score: score.rank,
    )
    missing = [score.item_key for score in scores if score.item_key not in by_key]
    if missing:
        raise ValueError(f"{settings.connection}: scores for items not pulled: {missing[:5]}")
    writes: list[PlannedWrite] = []
    if settings.score:
        writes += _value_writes(settings, by_key, scores, WriteField.WSJF_SCORE, decimals)
    if settings.cost_of_delay:
        writes += _value_writes(settings, by_key, scores, WriteField.COST_OF_DELAY, decimals)
    if settings.priority_bands:
        writes += _priority_writes(settings, by_key, scores)
    moves: list[RankMove] = []
    # Only scored items are ranked: an unscorable item's place says nothing about its value,
    # so it stays where people put it instead of being pushed below every scored item.
    ranked_keys = [score.item_key for score in scores if score.scored]
    if settings.rank and ranked_keys:
        rank_writes, moves = plan_rank(settings, by_key, ranked_keys)
        writes += rank_writes
    if settings.orphan_label:
        writes += _orphan_label_writes(settings.orphan_label, by_key.values(), orphan_keys)
    return ConnectionPlan(settings.connection, _by_item(writes), tuple(moves))


def _by_item(writes: list[PlannedWrite]) -> tuple[PlannedWrite, ...]:
    """Writes grouped by item in natural key order; `writes` comes in `WriteField` order (one
    field after the other), and grouping keeps that order within each item."""
    grouped: dict[str, list[PlannedWrite]] = {}
    for write in writes:
        grouped.setdefault(write.item_key, []).append(write)
    ordered: list[PlannedWrite] = []
    for key in sorted(grouped, key=natural_key):
        ordered += grouped[key]
    return tuple(ordered)


def _write(item: WorkItem, field: WriteField, old: WriteValue, new: WriteValue) -> PlannedWrite:
    return PlannedWrite(item.connection, item.key, field, old, new, item.revision)


def _value_writes(
    settings: WritePolicy,
    by_key: Mapping[str, WorkItem],
    scores: Sequence[Score],
    field: WriteField,
    decimals: int,
) -> list[PlannedWrite]:
    """Score / Cost of Delay where the value, rounded to the score's decimals, differs."""
    attribute = "wsjf" if field is WriteField.WSJF_SCORE else "cost_of_delay"
    writes: list[PlannedWrite] = []
    for score in scores:
        item = by_key[score.item_key]
        old: float | None = getattr(item, field.value)
        new: float | None = getattr(score, attribute)
        if new is None:
            if settings.clear_unscored_scores and old is not None:
                writes.append(_write(item, field, old, None))
            continue
        new = round(new, decimals)
        if old is None or not math.isfinite(old) or round(old, decimals) != new:
            writes.append(_write(item, field, old, new))
    return writes


def priority_for_scores(
    scores: Sequence[Score], bands: Sequence[PriorityTier], default: str | None
) -> dict[str, str | None]:
    """Priority per scored item key (in rank order) from the bands; None means "leave it"."""
    scored = [score for score in sorted(scores, key=lambda s: s.rank) if score.scored]
    total = len(scored)
    # round() first so that 30% of 10 is 3, not ceil(3.0000000000000004) = 4.
    cutoffs = [
        (math.ceil(round(total * band.top_percent / 100, 9)), band.priority)
        for band in sorted(bands, key=lambda band: band.top_percent)
    ]
    priorities: dict[str, str | None] = {}
    for index, score in enumerate(scored):
        band = next((name for cutoff, name in cutoffs if index < cutoff), default)
        priorities[score.item_key] = band
    return priorities


def _priority_writes(
    settings: WritePolicy, by_key: Mapping[str, WorkItem], scores: Sequence[Score]
) -> list[PlannedWrite]:
    wanted = priority_for_scores(scores, settings.priority_bands, settings.default_priority)
    writes: list[PlannedWrite] = []
    for key, priority in wanted.items():
        item = by_key[key]
        if priority is not None and item.priority != priority:
            writes.append(_write(item, WriteField.PRIORITY, item.priority, priority))
    return writes


def _orphan_label_writes(
    label: str, items: Iterable[WorkItem], orphan_keys: Collection[str]
) -> list[PlannedWrite]:
    """Add the label to orphans that lack it, remove it (any case) from items no longer orphans.

    Label comparison ignores case because Azure DevOps tags do; old/new are full sorted sets.
    """
    folded = label.casefold()
    writes: list[PlannedWrite] = []
    for item in items:
        is_orphan = item.key in orphan_keys
        if not item.labels and not is_orphan:
            continue
        carries = any(existing.casefold() == folded for existing in item.labels)
        if is_orphan and not carries:
            new = tuple(sorted((*item.labels, label)))
        elif carries and not is_orphan:
            new = tuple(
                sorted(existing for existing in item.labels if existing.casefold() != folded)
            )
        else:
            continue
        writes.append(_write(item, WriteField.LABELS, tuple(sorted(item.labels)), new))
    return writes


def current_rank_order(
    items: Iterable[WorkItem], rank_kind: RankKind
) -> tuple[list[str], set[str]]:
    """Keys in the tracker's current order, and the keys that have no usable rank.

    Lexoranks compare as strings (Jira's rank is a lexicographic string), numeric ranks as
    floats; ties (which a tracker should not have) fall back to the key, and unranked items go
    last, in natural key order.
    """
    ranked: list[tuple[Any, str]] = []
    unranked: list[str] = []
    for item in items:
        value = _rank_value(item.rank, rank_kind)
        if value is None:
            unranked.append(item.key)
        else:
            ranked.append((value, item.key))
    ranked.sort()
    unranked.sort(key=natural_key)
    return [key for _, key in ranked] + unranked, set(unranked)


def _rank_value(rank: str | float | None, rank_kind: RankKind) -> str | float | None:
    if rank is None:
        return None
    if rank_kind == "lexorank":
        return str(rank) or None
    try:
        value = float(rank)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def current_positions(
    items: Iterable[WorkItem], scores: Iterable[Score], rank_kind: RankKind
) -> dict[str, int]:
    """1-based place of each scored item in its tracker's current order (the report's "old
    rank"), within the rank scope: the scored items of `scores`, all of one connection. An
    unscored item is never moved, so it has no old rank to compare with."""
    keys = {score.item_key for score in scores if score.scored}
    scope = [item for item in items if item.key in keys]
    order, _ = current_rank_order(scope, rank_kind)
    return {key: index for index, key in enumerate(order, start=1)}


def plan_rank(
    settings: WritePolicy, by_key: Mapping[str, WorkItem], target: Sequence[str]
) -> tuple[list[PlannedWrite], list[RankMove]]:
    """Rank writes for the scope `target` (scored keys in WSJF order): only items off one LIS
    move.

    Items with no current rank always move (their place is unknown). Lexorank yields one RANK
    audit row per moved item (old/new = 1-based positions) inside `RankMove`s; numeric yields
    RANK writes with old/new rank values and no moves.
    """
    scope = [by_key[key] for key in target]
    current, unranked = current_rank_order(scope, settings.rank_kind)
    stationary = stationary_keys(current, target, always_move=unranked)
    if settings.rank_kind == "numeric":
        values = {
            item.key: value
            for item in scope
            if isinstance(value := _rank_value(item.rank, "numeric"), float)
        }
        new_values = numeric_ranks(
            target,
            values,
            stationary,
            step=settings.numeric_rank_step,
            min_gap=settings.numeric_min_gap,
        )
        writes = [
            _write(by_key[key], WriteField.RANK, by_key[key].rank, new_values[key])
            for key in target
            if key in new_values
        ]
        return writes, []
    if not stationary:  # nothing ranked at all: anchor on the top item
        stationary = {target[0]}
    old_position = {key: index + 1 for index, key in enumerate(current)}
    new_position = {key: index + 1 for index, key in enumerate(target)}
    moves = []
    for placement in lexorank_placements(target, stationary, settings.max_keys_per_move):
        audit = tuple(
            _write(by_key[key], WriteField.RANK, old_position[key], new_position[key])
            for key in placement.item_keys
        )
        moves.append(
            RankMove(
                settings.connection,
                placement.item_keys,
                placement.after_key,
                placement.before_key,
                audit,
            )
        )
    return [], moves
