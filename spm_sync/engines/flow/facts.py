"""Per-item flow facts from status history: when work started, when it was finally done, where
it stands now, how long it was active or waiting, and what was wrong with its history.

Rules (the report quotes them, so they are spelled out here):
- Started: the first entry into an in-progress status (its stage's category when the status is
  mapped to a stage, else the tracker's category); a status at creation counts from creation.
- Done: an item is done when its current status is. Its done time is its last entry into done,
  so an item reopened and finished again counts at its final finish. An item done, reopened and
  still open is work in progress again.
- Work in progress: not done, and started (or done once before, or in progress now).
- Timestamps are corrected first (see `chronology`), status names read through `statuses`:
  a change into a status of no known category is reported and taken as not started; the status
  at creation is taken as not started silently (items are created in a backlog status).
- No history: started is taken as created for an item in progress or done, and the done time is
  the tracker's resolution date when it has one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

from spm_sync.core.domain import ItemRef, StatusCategory
from spm_sync.core.history import FlowItem, FlowProblem, StatusChange
from spm_sync.engines.bulk import paused_gc
from spm_sync.engines.flow.chronology import in_order
from spm_sync.engines.flow.settings import FlowClass, FlowSettings, FlowStart
from spm_sync.engines.flow.statuses import StatusBook, StatusMeaning, status_books

_NO_TIME = timedelta(0)
_TODO = StatusCategory.TODO
_IN_PROGRESS = StatusCategory.IN_PROGRESS
_DONE = StatusCategory.DONE


class ItemFlow(NamedTuple):
    """The flow facts of one item (a named tuple: a portfolio has hundreds of thousands)."""

    ref: ItemRef
    flow_class: FlowClass
    value_streams: tuple[str, ...]
    status: str
    stage: str | None
    created: datetime | None
    started: datetime | None
    done: datetime | None
    """When the item was finally done; None when it is not done or the time is unknown."""
    is_done: bool
    wip: bool
    stage_entered: datetime | None
    """The last entry into the current stage; None when the history does not say."""
    active_seconds: float
    wait_seconds: float
    problems: tuple[str, ...]

    def flow_start(self, start: FlowStart) -> datetime | None:
        return self.created if start is FlowStart.CREATED else self.started

    def flow_days(self, start: FlowStart) -> float | None:
        """Flow time in days of a done item; None when it is open or either end is unknown."""
        begin = self.flow_start(start)
        if self.done is None or begin is None:
            return None
        return max(0.0, (self.done - begin).total_seconds() / 86400.0)


@paused_gc()
def derive_flows(
    items: Iterable[FlowItem], settings: FlowSettings, now: datetime
) -> dict[ItemRef, ItemFlow]:
    """Flow facts per item. `now` is aware UTC; changes after it are clock skew."""
    items = list(items)
    books = status_books(items, settings)
    return {item.ref: flow_of(item, books[item.ref[0]], settings, now) for item in items}


def flow_problems(flows: Iterable[ItemFlow]) -> list[FlowProblem]:
    """Every item's problems as report rows."""
    return [FlowProblem(flow.ref, reason) for flow in flows for reason in flow.problems]


class _Walk(NamedTuple):
    """What one pass over an item's history found."""

    started: datetime | None
    done_at: datetime | None
    """The last entry into done, when the history ends in done."""
    was_done: bool
    stage: str | None
    stage_since: datetime | None
    active: float
    wait: float
    last: StatusMeaning | None
    last_at: datetime
    last_status: str
    created: datetime
    """The creation date the walk started from (the first change's when there was none)."""


def flow_of(item: FlowItem, book: StatusBook, settings: FlowSettings, now: datetime) -> ItemFlow:
    """One item's flow facts by walking its history: the reference, and the path
    `fast_facts` leaves the histories that need correcting or reporting to."""
    problems: list[str] = []
    current = book(item.status)
    current_category = current.stage_category or item.status_category
    unmapped: list[str] = [item.status] if current.unmapped else []
    unknown: list[str] = []
    created = item.created
    if created is not None and created > now:
        problems.append("created in the future (clock skew): taken as now")
        created = now
    if not item.changes:
        return _without_history(
            item, created, current, current_category, unmapped, book, problems, now
        )

    walk = _walk_in_order(item.changes, created, book, settings, now, problems, unmapped, unknown)
    created = walk.created
    started, done_at, last, stage_since = walk.started, walk.done_at, walk.last, walk.stage_since
    if walk.last_status.casefold() != item.status.casefold():
        problems.append(
            f"history ends in '{walk.last_status}' but the item is in '{item.status}' now "
            "(partial history)"
        )
        done_at, last, stage_since = None, current, None
    active, wait = walk.active, walk.wait
    is_done = current_category is _DONE
    done: datetime | None = None
    if is_done:
        done = done_at
        if done is None:
            done = _resolution(item.resolved, started or created, now, problems)
            if done is None:
                problems.append("done, but the history does not say when: left out of flow time")
            else:
                problems.append("done time taken from the tracker's resolution date")
        if started is None and settings.start is FlowStart.STARTED:
            problems.append("done without passing an in-progress status: no flow time")
    elif started is None and current_category is _IN_PROGRESS:
        started = walk.last_at
        problems.append("start not in the history: taken as the last recorded change")
    elif last is not None and (started is not None or settings.start is FlowStart.CREATED):
        # The open item has been in its status since the last change: that counts too.
        if last.active:
            active += (now - walk.last_at).total_seconds()
        elif last.wait:
            wait += (now - walk.last_at).total_seconds()
    _name_statuses(problems, unmapped, unknown)
    return ItemFlow(
        ref=item.ref,
        flow_class=book.flow_class(item.type),
        value_streams=item.value_streams,
        status=item.status,
        stage=current.stage,
        created=created,
        started=started,
        done=done,
        is_done=is_done,
        wip=not is_done
        and (started is not None or walk.was_done or current_category is _IN_PROGRESS),
        stage_entered=stage_since
        if current.stage is not None and walk.stage == current.stage
        else None,
        active_seconds=active,
        wait_seconds=wait,
        problems=tuple(problems),
    )


def _walk_in_order(
    changes: Sequence[StatusChange],
    created: datetime | None,
    book: StatusBook,
    settings: FlowSettings,
    now: datetime,
    problems: list[str],
    unmapped: list[str],
    unknown: list[str],
) -> _Walk:
    """The walk over a history whose timestamps have been put right where needed.

    Most histories need no correction: they are walked as they are, and put in order (see
    `chronology`) only when the walk meets a change dated before the one ahead of it or before
    creation, or when something needs correcting before the walk can start.
    """
    if created is not None and changes[-1].at <= now:
        walk = _walk(changes, created, book, settings, unmapped, unknown)
        if walk is not None:
            return walk
    changes = in_order(changes, created, now, problems)
    if created is None:
        problems.append("no creation date: the first status change stands for it")
        created = changes[0].at
    walk = _walk(changes, created, book, settings, unmapped, unknown)
    if walk is None:
        raise AssertionError("in_order returned changes out of order")
    return walk


def _walk(
    changes: Sequence[StatusChange],
    created: datetime,
    book: StatusBook,
    settings: FlowSettings,
    unmapped: list[str],
    unknown: list[str],
) -> _Walk | None:
    """One pass over the history: start, last entry into done, stage entry, and active and
    waiting time from the flow start on; None as soon as a change is dated before the one ahead
    of it or before `created`. This loop runs for every change of the portfolio, so it reads
    plain locals only."""
    first_from = changes[0].from_status
    previous = None
    if first_from is not None:
        previous = book(first_from)
        # Items are created in a backlog status: one of unknown category is not reported.
        if previous.unmapped:
            _note_status(first_from, False, True, unknown, unmapped)
    category = previous.category if previous is not None else None
    started = created if category is _IN_PROGRESS else None
    done_at = created if category is _DONE else None
    was_done = done_at is not None
    stage = previous.stage if previous is not None else None
    stage_since: datetime = created
    measure = settings.measures_efficiency
    counting = settings.start is FlowStart.CREATED or started is not None
    active = wait = _NO_TIME
    segment_start = created
    memo = book.memo
    # The previous status's active and waiting flags, as plain locals (the meaning is a tuple:
    # unpacking it once beats reading its fields by name on every change).
    was_active = was_waiting = False
    if previous is not None:
        was_active, was_waiting = previous.active, previous.wait
    for _, at, _, to_status, to_category in changes:
        if at < segment_start:
            return None
        info = memo.get(to_status) or book(to_status)
        stage_category, category, to_stage, no_stage, is_active, is_waiting = info
        if stage_category is not None:
            category = stage_category
        elif to_category is not None:
            category = to_category
        if category is None or no_stage:
            _note_status(to_status, category is None, no_stage, unknown, unmapped)
        if measure and counting:
            if was_active:
                active += at - segment_start
            elif was_waiting:
                wait += at - segment_start
        if category is _DONE:
            if done_at is None:
                done_at = at
                was_done = True
        else:
            done_at = None
            if category is _IN_PROGRESS and started is None:
                started, counting = at, True
        if to_stage != stage:
            stage, stage_since = to_stage, at
        previous, segment_start = info, at
        was_active, was_waiting = is_active, is_waiting
    return _Walk(
        started,
        done_at,
        was_done,
        stage,
        stage_since,
        active.total_seconds(),
        wait.total_seconds(),
        previous,
        segment_start,
        changes[-1].to_status,
        created,
    )


def _note_status(
    status: str, no_category: bool, no_stage: bool, unknown: list[str], unmapped: list[str]
) -> None:
    if no_category and status not in unknown:
        unknown.append(status)
    if no_stage and status not in unmapped:
        unmapped.append(status)


def _without_history(
    item: FlowItem,
    created: datetime | None,
    current: StatusMeaning,
    category: StatusCategory,
    unmapped: list[str],
    book: StatusBook,
    problems: list[str],
    now: datetime,
) -> ItemFlow:
    is_done = category is _DONE
    started = created if category is not _TODO else None
    done = _resolution(item.resolved, created, now, problems) if is_done else None
    if category is _TODO:
        problems.append("no status history")
    else:
        problems.append("no status history: started taken as created")
    if is_done and done is None:
        problems.append("done, but when is unknown: left out of flow time and velocity")
    _name_statuses(problems, unmapped, [])
    return ItemFlow(
        ref=item.ref,
        flow_class=book.flow_class(item.type),
        value_streams=item.value_streams,
        status=item.status,
        stage=current.stage,
        created=created,
        started=started,
        done=done,
        is_done=is_done,
        wip=category is _IN_PROGRESS,
        stage_entered=None,
        active_seconds=0.0,
        wait_seconds=0.0,
        problems=tuple(problems),
    )


def _resolution(
    resolved: datetime | None, floor: datetime | None, now: datetime, problems: list[str]
) -> datetime | None:
    """The tracker's resolution date as a done time, kept between the start and `now`."""
    if resolved is None:
        return None
    if resolved > now:
        problems.append("resolution date in the future (clock skew): taken as now")
        return now
    if floor is not None and resolved < floor:
        problems.append("resolution date before the item started (clock skew): taken as its start")
        return floor
    return resolved


def _name_statuses(problems: list[str], unmapped: list[str], unknown: list[str]) -> None:
    for status in unmapped:
        problems.append(f"status '{status}' is mapped to no stage")
    for status in unknown:
        problems.append(f"status '{status}' has no known category: taken as not started")
