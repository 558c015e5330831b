"""Order arithmetic for backlog ranking: natural key order, the minimal set of items to move,
Jira rank moves and Azure DevOps numeric rank values.

Everything here is pure and works on item keys, so it is shared by the planner, the sandbox
verification and the benchmarks. The core idea: the items on one longest increasing subsequence
(LIS) of the current order, measured in target positions, are already in the right relative
order and stay where they are; only the others move. No smaller set of moves can produce the
target order, because any set of items left in place must already be in target order.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Protocol

JIRA_MAX_ISSUES_PER_RANK_CALL = 50
"""`PUT /rest/agile/1.0/issue/rank` takes at most 50 issues (specs/jira-software-agile.json)."""

_DIGITS = re.compile(r"(\d+)")


def natural_key(key: str) -> tuple[object, ...]:
    """Sort key that orders "PAY-9" before "PAY-10" and "9" before "10".

    Digit runs compare as numbers, the rest case-insensitively; `re.split` with a capturing group
    puts text at even and numbers at odd positions, so two keys never compare a str to an int.
    The key itself comes last, so "PAY-01" and "PAY-1" still have a fixed order.
    """
    pieces: list[str] = _DIGITS.split(key.casefold())
    parts: list[object] = [int(p) if i % 2 else p for i, p in enumerate(pieces)]
    parts.append(key)
    return tuple(parts)


def longest_increasing_subsequence(values: Sequence[int]) -> list[int]:
    """Indexes of one longest strictly increasing subsequence of `values`.

    Patience sorting: `tails[j]` is the index of the smallest value that ends an increasing run
    of length j + 1; each value finds its pile by binary search, so this is O(n log n).
    """
    tails: list[int] = []
    tail_values: list[int] = []
    previous = [-1] * len(values)
    for index, value in enumerate(values):
        pile = bisect_left(tail_values, value)
        if pile:
            previous[index] = tails[pile - 1]
        if pile == len(tails):
            tails.append(index)
            tail_values.append(value)
        else:
            tails[pile] = index
            tail_values[pile] = value
    subsequence: list[int] = []
    index = tails[-1] if tails else -1
    while index != -1:
        subsequence.append(index)
        index = previous[index]
    subsequence.reverse()
    return subsequence


def stationary_keys(
    current: Sequence[str], target: Sequence[str], always_move: Collection[str] = ()
) -> set[str]:
    """Keys that keep their place: one LIS of `current` measured in `target` positions.

    `always_move` keys (e.g. items with no rank yet, whose place is unknown) never stay.
    """
    if len(current) != len(target) or set(current) != set(target):
        raise ValueError("current and target order must hold the same keys")
    position = {key: index for index, key in enumerate(target)}
    candidates = [key for key in current if key not in always_move]
    kept = longest_increasing_subsequence([position[key] for key in candidates])
    return {candidates[index] for index in kept}


@dataclass(frozen=True, slots=True)
class Placement:
    """Put `item_keys`, in order, right after `after_key` or, at the top, before `before_key`."""

    item_keys: tuple[str, ...]
    after_key: str | None
    before_key: str | None


class _Move(Protocol):
    @property
    def item_keys(self) -> tuple[str, ...]: ...

    @property
    def after_key(self) -> str | None: ...

    @property
    def before_key(self) -> str | None: ...


def moved_runs(target: Sequence[str], stationary: Collection[str]) -> list[tuple[int, int]]:
    """Maximal runs [start, end) of consecutive target positions whose items move."""
    runs: list[tuple[int, int]] = []
    start: int | None = None
    for index, key in enumerate(target):
        if key in stationary:
            if start is not None:
                runs.append((start, index))
                start = None
        elif start is None:
            start = index
    if start is not None:
        runs.append((start, len(target)))
    return runs


def lexorank_placements(
    target: Sequence[str],
    stationary: Collection[str],
    max_keys: int = JIRA_MAX_ISSUES_PER_RANK_CALL,
) -> list[Placement]:
    """The rank calls that turn the current order into `target`, executable left to right.

    Each maximal run of moving items (in target order) goes right after its predecessor in
    target order, which is a stationary item; a run at the very top goes before its successor.
    Runs longer than `max_keys` are split, each later chunk going after the previous chunk's last
    key. Because every run lands next to an item that already sits in its final place, the
    stationary items never need to move and the result is the target order.
    """
    if max_keys < 1:
        raise ValueError("max_keys must be at least 1")
    placements: list[Placement] = []
    for start, end in moved_runs(target, stationary):
        if start == 0 and end == len(target):
            raise ValueError("at least one item must stay in place to anchor the moves")
        keys = tuple(target[start:end])
        for offset in range(0, len(keys), max_keys):
            chunk = keys[offset : offset + max_keys]
            if offset:
                placements.append(Placement(chunk, keys[offset - 1], None))
            elif start:
                placements.append(Placement(chunk, target[start - 1], None))
            else:
                placements.append(Placement(chunk, None, target[end]))
    return placements


def apply_moves(order: Iterable[str], moves: Iterable[_Move]) -> list[str]:
    """The order after executing `moves` (RankMove or Placement) left to right, like Jira does.

    A doubly linked list keeps each move O(keys moved), so replaying a 200,000-item backlog is
    linear. Raises ValueError on a move a tracker would reject (unknown key, no anchor, an
    anchor that is itself part of the move).
    """
    keys = list(order)
    after: dict[str | None, str | None] = {}
    before: dict[str | None, str | None] = {}
    previous: str | None = None  # None is the head sentinel
    for key in keys:
        after[previous], before[key] = key, previous
        previous = key
    after[previous], before[None] = None, previous
    if len(before) != len(keys) + 1:
        raise ValueError("order holds a key twice")

    def unlink(key: str) -> None:
        left, right = before[key], after[key]
        after[left], before[right] = right, left

    def link_after(anchor: str | None, key: str) -> None:
        right = after[anchor]
        after[anchor], before[key] = key, anchor
        after[key], before[right] = right, key

    for move in moves:
        anchor_key = move.after_key if move.after_key is not None else move.before_key
        if anchor_key is None or (move.after_key is not None and move.before_key is not None):
            raise ValueError(f"move of {move.item_keys} needs exactly one anchor")
        unknown = [key for key in (*move.item_keys, anchor_key) if key not in before]
        if unknown or anchor_key in move.item_keys:
            raise ValueError(f"move of {move.item_keys} around {anchor_key} is not executable")
        for key in move.item_keys:
            unlink(key)
        anchor = anchor_key if move.after_key is not None else before[anchor_key]
        for key in move.item_keys:
            link_after(anchor, key)
            anchor = key
    result: list[str] = []
    cursor = after[None]
    while cursor is not None:
        result.append(cursor)
        cursor = after[cursor]
    return result


def numeric_ranks(
    target: Sequence[str],
    current: Mapping[str, float | None],
    stationary: Collection[str],
    *,
    step: float = 1000.0,
    min_gap: float = 1e-6,
) -> dict[str, float]:
    """New numeric rank values (Azure DevOps StackRank/BacklogPriority) for the items to write.

    Stationary items keep their value; each run of moving items gets evenly spaced values
    strictly between its neighbours' values (the midpoint for a single item), or the first/last
    neighbour's value -/+ `step` at the ends. When the neighbours are closer than `min_gap` per
    item (or equal), the window grows one neighbour at a time, alternating sides, until it has
    room; the stationary items it swallowed are renumbered and returned too. Sorting all items
    by their resulting values gives `target`. Returns only values that differ from `current`.
    """
    if step <= 0 or min_gap <= 0:
        raise ValueError("step and min_gap must be positive")
    values: list[float | None] = []
    last_fixed = -math.inf
    for key in target:
        value = current.get(key)
        # Equal stationary values (ties) cannot express an order: only the first keeps its value.
        if key in stationary and value is not None and math.isfinite(value) and value > last_fixed:
            values.append(float(value))
            last_fixed = float(value)
        else:
            values.append(None)
    position = 0
    while position < len(values):
        if values[position] is not None:
            position += 1
            continue
        end = position
        while end < len(values) and values[end] is None:
            end += 1
        position = _fill_window(values, position, end, step, min_gap)
    changed: dict[str, float] = {}
    for key, value in zip(target, values, strict=True):
        assert value is not None
        if current.get(key) != value:
            changed[key] = value
    return changed


def _fill_window(
    values: list[float | None], start: int, end: int, step: float, min_gap: float
) -> int:
    """Fill values[start:end] (growing the window if needed); returns the index after it."""
    grow_left = True
    while True:
        low = values[start - 1] if start > 0 else None
        high = values[end] if end < len(values) else None
        spread = _spread(low, high, end - start, step, min_gap)
        if spread is not None:
            values[start:end] = spread
            return end
        if start > 0 and (grow_left or end == len(values)):
            start -= 1
        elif end < len(values):
            end += 1
            while end < len(values) and values[end] is None:  # unfilled items join the window
                end += 1
        else:  # only reachable when floats run out at both ends: number the whole scope afresh
            values[:] = [step * (index + 1) for index in range(len(values))]
            return len(values)
        grow_left = not grow_left


def _spread(
    low: float | None, high: float | None, count: int, step: float, min_gap: float
) -> list[float] | None:
    """`count` increasing values strictly between low and high, or None when there is no room."""
    if low is None and high is None:
        spread = [step * (index + 1) for index in range(count)]
    elif low is None:
        assert high is not None
        gap = max(step, abs(high) * 2**-40)
        spread = [high - gap * (count - index) for index in range(count)]
    elif high is None:
        gap = max(step, abs(low) * 2**-40)
        spread = [low + gap * (index + 1) for index in range(count)]
    else:
        gap = (high - low) / (count + 1)
        if gap < min_gap:
            return None
        spread = [low + gap * (index + 1) for index in range(count)]
    bounded = [-math.inf if low is None else low, *spread, math.inf if high is None else high]
    if any(left >= right for left, right in pairwise(bounded)):
        return None  # float resolution ran out at this magnitude
    return spread
