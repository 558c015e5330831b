"""What a tracker status means for flow: its category, its Kanban stage, and whether time in it
is active or waiting.

A status mapped to a stage takes the stage's category: the portfolio office decides what
counts as started. Otherwise the tracker's category counts, as stated where the status is read
(an item's current category, a change's own `to_category`); where it is read without one (the
status an item was created in, a change that does not carry it) the book gives the category the
connection's items state for that name now, failing that the one their changes state. A name
stated with two categories (two workflows) takes the lowest (To Do, then In Progress, then
Done), so the answer never depends on the order of the input. Each name's meaning is worked out
once per connection and memoised: a few dozen names serve millions of changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from operator import attrgetter, itemgetter
from typing import NamedTuple

from spm_sync.core.domain import StatusCategory
from spm_sync.core.history import FlowItem
from spm_sync.engines.flow.settings import FlowClass, FlowSettings

_ORDER = {category: rank for rank, category in enumerate(StatusCategory)}
_STATUS_CATEGORY = attrgetter("status", "status_category")
_TO_CATEGORY = itemgetter(3, 4)
"""(to_status, to_category) of a `StatusChange`, at C speed."""


class StatusMeaning(NamedTuple):
    stage_category: StatusCategory | None
    """The category of the status's stage; None when it is mapped to none."""
    category: StatusCategory | None
    """The stage's category, else the book's tracker category; None when nothing says."""
    stage: str | None
    unmapped: bool
    """True when stages are configured and this status is in none of them."""
    active: bool
    wait: bool


class StatusBook:
    """The meaning of every status name of one connection, and its item types' flow classes.

    `memo` is read directly by the engine's inner loop (a dictionary read is the cheapest
    lookup there is); call the book for a name not in it yet.
    """

    __slots__ = (
        "_changes_stated",
        "_current",
        "_items",
        "_settings",
        "_stated",
        "classes",
        "memo",
    )

    def __init__(
        self,
        items: list[FlowItem],
        settings: FlowSettings,
        stated: Callable[[], Iterable[tuple[str, StatusCategory | None]]] | None = None,
    ) -> None:
        """`stated` gives the (status, category) pairs the changes state, when the items do
        not carry their changes (the flow stage reads them as columns); by default the
        items' changes are read."""
        self.memo: dict[str, StatusMeaning] = {}
        self.classes: dict[str, FlowClass] = {}
        self._items = items
        self._settings = settings
        self._stated = stated
        self._current = _lowest(set(map(_STATUS_CATEGORY, items)))
        self._changes_stated: dict[str, StatusCategory] | None = None

    def __call__(self, status: str) -> StatusMeaning:
        known = self.memo.get(status)
        if known is None:
            known = self.memo[status] = self._meaning(status)
        return known

    def flow_class(self, item_type: str) -> FlowClass:
        known = self.classes.get(item_type)
        if known is None:
            known = self.classes[item_type] = self._settings.flow_class(item_type)
        return known

    def _meaning(self, status: str) -> StatusMeaning:
        folded = status.casefold()
        settings = self._settings
        stage = settings.stage_map.stage_of(status)
        category = stage.category if stage is not None else self._tracker_category(folded)
        return StatusMeaning(
            stage_category=stage.category if stage is not None else None,
            category=category,
            stage=stage.name if stage is not None else None,
            unmapped=stage is None and settings.stage_map.configured,
            active=folded in settings.active_statuses,
            wait=folded in settings.wait_statuses,
        )

    def _tracker_category(self, folded: str) -> StatusCategory | None:
        known = self._current.get(folded)
        if known is None:
            # Only a status no item is in now gets here: read what the changes state, once.
            if self._changes_stated is None:
                stated: set[tuple[str, StatusCategory | None]] = set()
                if self._stated is not None:
                    stated.update(self._stated())
                for item in self._items:
                    stated.update(map(_TO_CATEGORY, item.changes))
                self._changes_stated = _lowest(pair for pair in stated if pair[1] is not None)
            known = self._changes_stated.get(folded)
        return known


def status_books(items: list[FlowItem], settings: FlowSettings) -> dict[str, StatusBook]:
    """One book per connection of the items."""
    by_connection: dict[str, list[FlowItem]] = {}
    for item in items:
        by_connection.setdefault(item.ref[0], []).append(item)
    return {
        connection: StatusBook(members, settings) for connection, members in by_connection.items()
    }


def _lowest(
    pairs: Iterable[tuple[str, StatusCategory | None]],
) -> dict[str, StatusCategory]:
    lowest: dict[str, StatusCategory] = {}
    for status, category in pairs:
        if category is None:
            continue
        folded = status.casefold()
        known = lowest.get(folded)
        if known is None or _ORDER[category] < _ORDER[known]:
            lowest[folded] = category
    return lowest
