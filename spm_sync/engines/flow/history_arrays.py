"""One connection's status changes laid end to end in arrays, for `fast_facts`.

Each change becomes a timestamp in epoch microseconds (exact, ordered as the datetimes are),
a status code (a few dozen names serve millions of changes) and the category the walk would
give it; each item a slice of those arrays. Status names get their meaning from the
connection's `StatusBook`, once per name, as arrays indexed by code.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from functools import partial
from itertools import chain, compress, repeat
from operator import attrgetter, is_not, itemgetter
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from spm_sync.core.domain import StatusCategory
from spm_sync.core.history import EPOCH, FlowItem, StatusChange, epoch_microseconds
from spm_sync.engines.flow.statuses import StatusBook, StatusMeaning

Ints = npt.NDArray[np.int64]
Flags = npt.NDArray[np.bool_]

NONE = -1
"""Code of "no category" / "no stage"."""
ODD = -2
"""Code of a category that is not a `StatusCategory` member (left to the reference walk)."""
TODO, IN_PROGRESS, DONE = 0, 1, 2
CATEGORY_CODE = {
    StatusCategory.TODO: TODO,
    StatusCategory.IN_PROGRESS: IN_PROGRESS,
    StatusCategory.DONE: DONE,
}
_TOLD_CODE = {id(category): code for category, code in CATEGORY_CODE.items()} | {id(None): NONE}
"""A category's code by identity (hashing an enum member is a Python call: too slow for
millions of changes); anything but a member or None is ODD."""
_CATEGORIES = {code: category for category, code in CATEGORY_CODE.items()}
_AT = itemgetter(1)
_FROM_STATUS = itemgetter(2)
_TO_STATUS = itemgetter(3)
_TO_CATEGORY = itemgetter(4)
_CHANGES = attrgetter("changes")
_STATUS = attrgetter("status")
_CREATED = attrgetter("created")
_KNOWN = partial(is_not, None)
_STATUS_CATEGORY = attrgetter("status_category")


def microseconds(moments: Iterable[datetime], count: int) -> Ints:
    """`epoch_microseconds` of `count` datetimes as an array."""
    return np.fromiter(epoch_microseconds(moments), np.int64, count)


def moment(microseconds: int) -> datetime:
    """The aware UTC datetime of epoch microseconds: equal to the one the store reads."""
    return EPOCH + timedelta(microseconds=microseconds)


def told_codes(categories: Iterable[object], count: int) -> Ints:
    """Category codes of what a change or an item states (NONE when it states nothing)."""
    return np.fromiter(map(_TOLD_CODE.get, map(id, categories), repeat(ODD)), np.int64, count)


class ChangeColumns(NamedTuple):
    """One connection's changes end to end, each item's (in the items' order) after the
    previous item's: `counts[i]` changes of item i. Statuses are places in `names` (NONE: not
    said), categories codes (NONE: not said, ODD: not a `StatusCategory`). `moments` are the
    changes' own datetimes when they came as objects; None when they came from the store
    (then a datetime is made back from its microseconds, equal to the one the store reads)."""

    counts: Ints
    at: Ints
    from_status: Ints
    to_status: Ints
    told: Ints
    names: list[str]
    moments: list[datetime] | None

    def moments_of(self, positions: Ints) -> list[datetime]:
        """The datetimes of the changes at `positions`."""
        if self.moments is not None:
            return list(map(self.moments.__getitem__, positions.tolist()))
        # numpy makes the timedeltas at C speed; adding each to the epoch keeps it aware.
        since = self.at[positions].astype("timedelta64[us]").astype(object).tolist()
        return list(map(EPOCH.__add__, since))

    def changes_of(self, item: FlowItem, start: int, count: int) -> tuple[StatusChange, ...]:
        """The item's changes as `StatusChange`s (for the reference walk)."""
        if self.moments is not None:
            return item.changes
        names, ref = self.names, item.ref
        return tuple(
            StatusChange(
                ref,
                moment(int(self.at[p])),
                None if self.from_status[p] == NONE else names[self.from_status[p]],
                names[self.to_status[p]],
                None if self.told[p] == NONE else _CATEGORIES[int(self.told[p])],
            )
            for p in range(start, start + count)
        )

    def stated(self) -> set[tuple[str, StatusCategory | None]]:
        """Every (to status, category) pair the changes state (for `StatusBook`)."""
        pairs = np.unique(self.to_status * 8 + (self.told - ODD))
        return {
            (self.names[int(pair) // 8], _CATEGORIES.get(int(pair) % 8 + ODD)) for pair in pairs
        }


def columns_of_items(items: Sequence[FlowItem]) -> ChangeColumns | None:
    """The columns of items that carry their changes; None when a datetime is naive (the
    reference walk then decides what happens)."""
    histories = list(map(_CHANGES, items))
    counts = np.fromiter(map(len, histories), np.int64, len(items))
    changes: list[StatusChange] = list(chain.from_iterable(histories))
    total = len(changes)
    moments = list(map(_AT, changes))
    try:
        at = microseconds(moments, total)
    except TypeError:
        return None
    code: dict[str | None, int] = {None: NONE}
    for change in changes:
        code.setdefault(change.from_status, len(code) - 1)
        code.setdefault(change.to_status, len(code) - 1)
    return ChangeColumns(
        counts=counts,
        at=at,
        from_status=np.fromiter(map(code.__getitem__, map(_FROM_STATUS, changes)), np.int64, total),
        to_status=np.fromiter(map(code.__getitem__, map(_TO_STATUS, changes)), np.int64, total),
        told=told_codes(map(_TO_CATEGORY, changes), total),
        names=[name for name in code if name is not None],
        moments=moments,
    )


class Meanings(NamedTuple):
    """What each status code means, as arrays indexed by code (see `StatusMeaning`)."""

    meanings: list[StatusMeaning]
    stage_category: Ints
    category: Ints
    stage: Ints
    """The stage's place on the board; NONE when the status is mapped to none."""
    unmapped: Flags
    active: Flags
    wait: Flags
    fold: Ints
    """Codes of names equal once case-folded share a fold."""


class HistoryArrays(NamedTuple):
    """One connection's histories as the walk needs them. Per change: `at`, `status`,
    `category`, `owner` (its item's place in `walked`). Per walked item (one with
    changes; `walked` gives its index in the items): `starts`/`ends` (its first and last
    change), `created`/`created_known`, `before` (the status code before its first change,
    NONE when the tracker does not say). Per item: `current` (the code of its status now) and
    `current_told` (its tracker category's code)."""

    now: int
    at: Ints
    status: Ints
    category: Ints
    owner: Ints
    walked: Ints
    starts: Ints
    ends: Ints
    created: Ints
    created_known: Flags
    before: Ints
    current: Ints
    current_told: Ints
    meaning: Meanings


def history_arrays(
    items: Sequence[FlowItem],
    columns: ChangeColumns,
    book: StatusBook,
    stages: Sequence[str],
    now: datetime,
) -> HistoryArrays | None:
    """The walk's arrays of `items` (one connection's, `book` its book, `stages` the board's
    stage names in order); None when there is no change to walk or a datetime is naive (then
    the reference walk decides what happens)."""
    counts, total = columns.counts, len(columns.at)
    if total == 0:
        return None
    walked = np.flatnonzero(counts)
    created_at = list(map(_CREATED, map(items.__getitem__, walked.tolist())))
    created_known = np.fromiter(map(_KNOWN, created_at), np.bool_, len(created_at))
    created = np.zeros(len(walked), np.int64)
    try:
        now_us = int(microseconds((now,), 1)[0])
        known = list(compress(created_at, created_known.tolist()))
        created[created_known] = microseconds(known, len(known))
    except TypeError:
        return None

    # Status codes are places in `names`; the items' current statuses are added after them.
    names = list(columns.names)
    code = {name: n for n, name in enumerate(names)}
    for name in dict.fromkeys(map(_STATUS, items)):
        if name not in code:
            code[name] = len(names)
            names.append(name)
    current = np.fromiter(map(code.__getitem__, map(_STATUS, items)), np.int64, len(items))
    meaning = _meanings(names, book, stages)
    status = columns.to_status
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))[walked]

    # Each change's category: its stage's, else the one it carries, else the book's.
    told = columns.told
    staged = meaning.stage_category[status]
    category = np.where(
        staged != NONE, staged, np.where(told != NONE, told, meaning.category[status])
    )
    return HistoryArrays(
        now=now_us,
        at=columns.at,
        status=status,
        category=category,
        owner=np.repeat(np.arange(len(walked)), counts[walked]),
        walked=walked,
        starts=starts,
        ends=starts + counts[walked] - 1,
        created=created,
        created_known=created_known,
        before=columns.from_status[starts],
        current=current,
        current_told=told_codes(map(_STATUS_CATEGORY, items), len(items)),
        meaning=meaning,
    )


def _meanings(names: list[str], book: StatusBook, stages: Sequence[str]) -> Meanings:
    """The meaning arrays of the codes of `names` (code n is `names[n]`)."""
    meanings = [book(name) for name in names]
    place = {stage: n for n, stage in enumerate(stages)}
    folds: dict[str, int] = {}
    return Meanings(
        meanings=meanings,
        stage_category=_categories(m.stage_category for m in meanings),
        category=_categories(m.category for m in meanings),
        stage=np.array([NONE if m.stage is None else place[m.stage] for m in meanings], np.int64),
        unmapped=np.array([m.unmapped for m in meanings], dtype=np.bool_),
        active=np.array([m.active for m in meanings], dtype=np.bool_),
        wait=np.array([m.wait for m in meanings], dtype=np.bool_),
        fold=np.array(
            [folds.setdefault(name.casefold(), len(folds)) for name in names],
            np.int64,
        ),
    )


def _categories(categories: Iterable[StatusCategory | None]) -> Ints:
    return np.array([NONE if c is None else CATEGORY_CODE[c] for c in categories], np.int64)
