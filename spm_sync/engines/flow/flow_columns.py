"""The flow facts the flow table reads, one array entry per item, in the items' order.

`flow_table.FlowTable` needs every item's flow class, progress and done flags, active and
waiting seconds and three times as epoch microseconds. Read from 200,000 `ItemFlow`s that is
eight passes over objects spread on a large heap and three datetime conversions per item,
about half a second; the array derivation (`fast_facts`) already holds all of it as arrays.
So the derivation hands its arrays over as `FlowColumns`, and only the items the reference
walk derived are read from their `ItemFlow`s (`columns_of_flows`, also the table's own way
when it is given flows alone). Both ways give the same values: a test compares them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import partial
from itertools import compress
from operator import attrgetter, is_not
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from spm_sync.engines.flow.facts import ItemFlow
from spm_sync.engines.flow.history_arrays import Flags, Ints, microseconds
from spm_sync.engines.flow.settings import FlowClass

Floats = npt.NDArray[np.float64]

_KNOWN = partial(is_not, None)
_FIELDS = tuple(map(attrgetter, ("flow_class", "wip", "is_done", "created", "started", "done")))
_ACTIVE = attrgetter("active_seconds")
_WAIT = attrgetter("wait_seconds")


class FlowColumns(NamedTuple):
    """Per item: its `ItemFlow`'s fields the table reads. A time is a known flag and epoch
    microseconds (0 where unknown)."""

    flow_class: list[FlowClass]
    wip: Flags
    is_done: Flags
    active: Floats
    wait: Floats
    created_known: Flags
    created_us: Ints
    started_known: Flags
    started_us: Ints
    done_known: Flags
    done_us: Ints


def columns_of_flows(flows: Sequence[ItemFlow]) -> FlowColumns:
    """The columns read from the flows themselves (one pass per field: transposing with
    zip(*rows) costs far more at this size)."""
    count = len(flows)
    classes, wip, is_done, created, started, done = (list(map(field, flows)) for field in _FIELDS)
    return FlowColumns(
        classes,
        np.array(wip, dtype=np.bool_),
        np.array(is_done, dtype=np.bool_),
        np.fromiter(map(_ACTIVE, flows), np.float64, count),
        np.fromiter(map(_WAIT, flows), np.float64, count),
        *times(created),
        *times(started),
        *times(done),
    )


def times(moments: Sequence[datetime | None]) -> tuple[Flags, Ints]:
    """Which are known, and each known one in epoch microseconds (0 where unknown)."""
    known = np.fromiter(map(_KNOWN, moments), np.bool_, len(moments))
    values = np.zeros(len(moments), np.int64)
    present: Iterable[datetime] = compress(moments, known.tolist())  # type: ignore[arg-type]
    values[known] = microseconds(present, int(known.sum()))
    return known, values


def empty_columns(count: int) -> FlowColumns:
    """Columns of `count` items, to be filled with `put`."""

    def flags() -> Flags:
        return np.zeros(count, np.bool_)

    def ints() -> Ints:
        return np.zeros(count, np.int64)

    return FlowColumns(
        [FlowClass.OTHER] * count,
        flags(),
        flags(),
        np.zeros(count, np.float64),
        np.zeros(count, np.float64),
        flags(),
        ints(),
        flags(),
        ints(),
        flags(),
        ints(),
    )


def put(into: FlowColumns, rows: Sequence[int], part: FlowColumns) -> None:
    """Write `part`'s entries (one per row, in order) into the rows `rows` of `into`."""
    classes = into.flow_class
    for row, flow_class in zip(rows, part.flow_class, strict=True):
        classes[row] = flow_class
    at = np.asarray(rows, np.int64)
    for whole, piece in zip(into[1:], part[1:], strict=True):
        whole[at] = piece


def joined(parts: Sequence[FlowColumns]) -> FlowColumns:
    """The columns of the items of `parts`, one part after the other."""
    if not parts:
        return empty_columns(0)
    classes: list[FlowClass] = []
    for part in parts:
        classes.extend(part.flow_class)
    arrays = (np.concatenate(pieces) for pieces in zip(*(part[1:] for part in parts), strict=True))
    return FlowColumns(classes, *arrays)
