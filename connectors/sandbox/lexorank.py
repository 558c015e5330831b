"""Lexorank-like rank strings, as Jira Software keeps them in its "Rank" custom field.

A rank looks like Jira's: `0|hzzzzz:` — a bucket, a fixed-width base-36 main part and an
optional base-36 extension after the colon (`0|hzzzzz:i`). Plain string comparison orders them
(digits sort before letters in ASCII, the main part has a fixed width, the extension never
ends in `0`), so the backlog order is `sorted(ranks)`.

Moving issues gives only the moved issues new ranks, chosen between their new neighbours. When
the gap is used up (a rank would need more than `MAX_DIGITS` digits) the whole order is
rebalanced: every rank is rewritten, evenly spaced, in the same order — as Jira's background
rebalancing does — and the rebalance is logged.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterable

logger = logging.getLogger(__name__)

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
BASE = len(ALPHABET)
MAIN_DIGITS = 6
MAX_DIGITS = 12
BUCKET = "0|"


class NoRoomError(Exception):
    """No rank fits between two neighbours within MAX_DIGITS: the order needs a rebalance."""


def _digits(rank: str) -> str:
    body = rank[len(BUCKET) :]
    return body.replace(":", "")


def _format(value: int, width: int) -> str:
    digits = []
    for _ in range(width):
        value, digit = divmod(value, BASE)
        digits.append(ALPHABET[digit])
    text = "".join(reversed(digits))
    main, extension = text[:MAIN_DIGITS], text[MAIN_DIGITS:].rstrip("0")
    return f"{BUCKET}{main}:{extension}"


def _value(rank: str | None, width: int, default: int) -> int:
    if rank is None:
        return default
    return int(_digits(rank).ljust(width, "0"), BASE)


def evenly_spaced(count: int) -> list[str]:
    """`count` ranks spread evenly over the whole space, ascending (a fresh or rebalanced order)."""
    width = MAIN_DIGITS
    while BASE**width <= 4 * (count + 1):
        width += 1
    step = BASE**width // (count + 1)
    return [_format(step * (n + 1), width) for n in range(count)]


def between(before: str | None, after: str | None, count: int = 1) -> list[str]:
    """`count` ascending ranks strictly between `before` and `after` (None: an open end).

    Uses the fewest digits that leave room, so ranks grow only where issues are packed in.
    """
    if before is not None and after is not None and before >= after:
        raise ValueError(f"rank {before!r} is not below {after!r}")
    width = max(MAIN_DIGITS, len(_digits(before or "")), len(_digits(after or "")))
    while width <= MAX_DIGITS:
        low = _value(before, width, 0)
        high = _value(after, width, BASE**width)
        gap = high - low
        if gap > count:
            step = gap // (count + 1)
            return [_format(low + step * (n + 1), width) for n in range(count)]
        width += 1
    raise NoRoomError(f"no room for {count} rank(s) between {before!r} and {after!r}")


class RankOrder:
    """All ranks in ascending order, with the owner (issue id) of each; bisect-based.

    Insert/remove are O(n) list moves, which is microseconds at the sizes the sandbox serves
    (50,000 issues) and keeps the structure a plain sorted list.
    """

    def __init__(self) -> None:
        self._ranks: list[str] = []
        self._owners: dict[str, int] = {}
        self.rebalances = 0

    def __len__(self) -> int:
        return len(self._ranks)

    def load(self, owners: Iterable[tuple[str, int]]) -> None:
        pairs = sorted(owners)
        self._ranks = [rank for rank, _ in pairs]
        self._owners = dict(pairs)
        if len(self._owners) != len(self._ranks):
            raise ValueError("duplicate rank strings")

    def add(self, rank: str, owner: int) -> None:
        if rank in self._owners:
            raise ValueError(f"rank {rank!r} is taken")
        bisect.insort(self._ranks, rank)
        self._owners[rank] = owner

    def remove(self, rank: str) -> None:
        index = bisect.bisect_left(self._ranks, rank)
        if index == len(self._ranks) or self._ranks[index] != rank:
            raise KeyError(rank)
        del self._ranks[index]
        del self._owners[rank]

    def neighbours(self, rank: str) -> tuple[str | None, str | None]:
        """The ranks just below and just above `rank` (which must be present)."""
        index = bisect.bisect_left(self._ranks, rank)
        below = self._ranks[index - 1] if index > 0 else None
        above = self._ranks[index + 1] if index + 1 < len(self._ranks) else None
        return below, above

    def owners(self) -> list[int]:
        owners = self._owners
        return [owners[rank] for rank in self._ranks]

    def rebalance(self) -> dict[int, str]:
        """Rewrite every rank evenly spaced, keeping the order; returns owner -> new rank."""
        owners = self.owners()
        fresh = evenly_spaced(len(owners))
        self._ranks = fresh
        self._owners = dict(zip(fresh, owners, strict=True))
        self.rebalances += 1
        logger.warning("lexorank: no room left between neighbours; rebalanced %d ranks", len(fresh))
        return dict(zip(owners, fresh, strict=True))
