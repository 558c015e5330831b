"""The Portfolio Kanban: items as cards in their stage's column, per value stream, against the
WIP limits, and what to stop starting.

A column over its limit holds, in order of entry, the cards within the limit and the cards
beyond it. The ones beyond are those that entered most recently: pulling them in is what broke
the limit, so they are the ones the report names under "stop starting". A card whose entry into
its stage the history does not show is ordered as the earliest (it is not named on a guess);
cards that entered at the same moment keep the order they were given in.

Limits count cards: a portfolio-wide limit (`WipLimits.per_stage`) counts each item once; a
value stream's limit counts that stream's board, on which an item of two streams also appears.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from operator import itemgetter
from typing import NamedTuple

from spm_sync.core.domain import ItemRef, StatusCategory
from spm_sync.engines.bulk import paused_gc
from spm_sync.engines.flow.facts import ItemFlow
from spm_sync.engines.flow.settings import StageMap, WipLimits


class Card(NamedTuple):
    """One item on a board (a named tuple: a portfolio board can hold thousands)."""

    ref: ItemRef
    status: str
    entered: datetime | None
    beyond_limit: bool = False
    """True when this card is past a limit of its column (portfolio-wide or its stream's)."""


@dataclass(frozen=True, slots=True)
class Column:
    """One stage of one board, cards in order of entry (earliest first)."""

    stage: str
    cards: tuple[Card, ...]
    limit: int | None

    @property
    def over_by(self) -> int:
        return 0 if self.limit is None else max(0, len(self.cards) - self.limit)


@dataclass(frozen=True, slots=True)
class Board:
    """The board of one value stream; `value_stream` None holds the items of no stream."""

    value_stream: str | None
    columns: tuple[Column, ...]

    @property
    def over_limit(self) -> tuple[Column, ...]:
        return tuple(column for column in self.columns if column.over_by)


@dataclass(frozen=True, slots=True)
class OverLimit:
    """A stage over its limit, portfolio-wide (`value_stream` None) or on one stream's board;
    `beyond` are the cards past the limit, the most recent entry first."""

    value_stream: str | None
    stage: str
    limit: int
    count: int
    beyond: tuple[ItemRef, ...]


@dataclass(frozen=True, slots=True)
class Unplaced:
    """An item that is on no board, and why."""

    ref: ItemRef
    reason: str


@dataclass(frozen=True, slots=True)
class PortfolioKanban:
    """The boards (by value stream name, items of no stream last), the portfolio-wide count per
    stage, every limit exceeded, the items to stop starting (each once, most recent entry
    first) and the items that could not be placed."""

    boards: tuple[Board, ...]
    stage_counts: Mapping[str, int]
    over_limit: tuple[OverLimit, ...] = ()
    stop_starting: tuple[ItemRef, ...] = ()
    unplaced: tuple[Unplaced, ...] = field(default=())

    @property
    def over_limit_items(self) -> tuple[ItemRef, ...]:
        """Every item beyond some limit, sorted: what the run result lists."""
        return tuple(sorted(self._beyond()))

    def first_over_limit_items(self, count: int) -> tuple[tuple[ItemRef, ...], int]:
        """The first `count` of `over_limit_items`, and how many there are: a document lists
        a few hundred of what can be tens of thousands, and sorting them all is most of the
        time it takes to write the board."""
        beyond = self._beyond()
        return tuple(heapq.nsmallest(max(count, 0), beyond)), len(beyond)

    def _beyond(self) -> set[ItemRef]:
        return {ref for over in self.over_limit for ref in over.beyond}


@paused_gc()
def portfolio_kanban(
    flows: Iterable[ItemFlow],
    stage_map: StageMap,
    limits: WipLimits,
    *,
    done_since: datetime | None = None,
) -> PortfolioKanban:
    """Place each item's card in its stage on each of its value streams' boards.

    `flows` must be derived with the same `stage_map` (their stage and stage entry come from
    it). Done items finished before `done_since` (or at an unknown time, when it is given) are
    left off the board: the done column shows recent finishes, not the whole archive.
    """
    if not stage_map.configured:
        raise ValueError("the Portfolio Kanban needs its stages configured")
    _check_limits(stage_map, limits)
    placed, unplaced = _place(flows, stage_map, done_since)
    portfolio: dict[str, list[Card]] = defaultdict(list)
    by_stream: dict[str | None, dict[str, list[Card]]] = defaultdict(lambda: defaultdict(list))
    for _, card, stage_name, streams in placed:
        portfolio[stage_name].append(card)
        if len(streams) == 1:  # most items: one stream, which it cannot name twice
            by_stream[streams[0]][stage_name].append(card)
            continue
        for stream in dict.fromkeys(streams) or (None,):
            by_stream[stream][stage_name].append(card)
    streams_in_order = sorted(by_stream, key=lambda s: (s is None, s or ""))

    over_limit = _exceeded(None, portfolio, stage_map, limits.per_stage)
    for stream in streams_in_order:
        if stream is not None:
            stream_limits = {
                stage: limit for (name, stage), limit in limits.per_stream.items() if name == stream
            }
            over_limit += _exceeded(stream, by_stream[stream], stage_map, stream_limits)
    beyond = {ref for over in over_limit for ref in over.beyond}
    return PortfolioKanban(
        boards=tuple(
            _board(stream, by_stream[stream], stage_map, limits, beyond)
            for stream in streams_in_order
        ),
        stage_counts={stage.name: len(portfolio.get(stage.name, [])) for stage in stage_map.stages},
        over_limit=tuple(over_limit),
        stop_starting=tuple(filter(beyond.__contains__, map(_REF, map(_CARD, reversed(placed))))),
        unplaced=tuple(sorted(unplaced, key=lambda u: u.ref)),
    )


_Placed = tuple[datetime, Card, str, tuple[str, ...]]
"""(entry or earliest, card, stage, value streams) of one item on the boards."""


def _place(
    flows: Iterable[ItemFlow], stage_map: StageMap, done_since: datetime | None
) -> tuple[list[_Placed], list[Unplaced]]:
    """The cards in order of entry into their stage, and the items that have no stage."""
    done_stages = {s.name for s in stage_map.stages if s.category is StatusCategory.DONE}
    placed: list[_Placed] = []
    unplaced: list[Unplaced] = []
    new_card = _NEW_CARD
    # The fields by unpacking, once per item (a named tuple's field read by name is a
    # descriptor call, and a board has hundreds of thousands of items).
    for ref, _, streams, status, stage, _, _, done, _, _, entered, _, _, _ in flows:
        if stage is None:
            unplaced.append(Unplaced(ref, f"status '{status}' is mapped to no stage"))
        elif not (
            done_since is not None and stage in done_stages and (done is None or done < done_since)
        ):
            placed.append(
                (entered or _EARLIEST, new_card((ref, status, entered, False)), stage, streams)
            )
    # One stable sort into entry order; every column list made from it keeps that order.
    placed.sort(key=itemgetter(0))
    return placed, unplaced


def _exceeded(
    stream: str | None,
    columns: Mapping[str, list[Card]],
    stage_map: StageMap,
    limits: Mapping[str, int],
) -> list[OverLimit]:
    over_limit = []
    for stage in stage_map.stages:
        limit = limits.get(stage.name)
        cards = columns.get(stage.name, [])
        if limit is not None and len(cards) > limit:
            over_limit.append(_over(stream, stage.name, limit, cards))
    return over_limit


def _check_limits(stage_map: StageMap, limits: WipLimits) -> None:
    names = {stage.name for stage in stage_map.stages}
    unknown = {s for s in limits.per_stage if s not in names}
    unknown |= {stage for _, stage in limits.per_stream if stage not in names}
    if unknown:
        raise ValueError(f"WIP limits name unknown stages: {', '.join(sorted(unknown))}")


_EARLIEST = datetime.min.replace(tzinfo=UTC)
_REF = itemgetter(0)
_CARD = itemgetter(1)
_NEW_CARD = partial(tuple.__new__, Card)
"""A `Card` from a tuple of all its fields, without the named tuple's Python `__new__`: a
portfolio board places hundreds of thousands."""


def _over(stream: str | None, stage: str, limit: int, cards: list[Card]) -> OverLimit:
    beyond = tuple(card.ref for card in reversed(cards[limit:]))
    return OverLimit(stream, stage, limit, len(cards), beyond)


def _board(
    stream: str | None,
    stages: Mapping[str, list[Card]],
    stage_map: StageMap,
    limits: WipLimits,
    beyond: set[ItemRef],
) -> Board:
    columns = []
    for stage in stage_map.stages:
        cards = tuple(stages.get(stage.name, []))
        if beyond and not beyond.isdisjoint(map(_REF, cards)):
            cards = tuple(
                _NEW_CARD((ref, status, at, ref in beyond)) for ref, status, at, _ in cards
            )
        limit = limits.per_stream.get((stream, stage.name)) if stream is not None else None
        columns.append(Column(stage.name, cards, limit))
    return Board(stream, tuple(columns))
