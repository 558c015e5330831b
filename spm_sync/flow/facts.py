"""Per-item flow facts from status history: when work started, when it was finally done, where
it stands now, how long it was active or waiting, and what was wrong with its history.

Rules (the report quotes them, so they are spelled out here):
- Started: the first entry into an in-progress status (its stage's category when the status is
  mapped to a stage, else the tracker's category); a status at creation counts from creation.
- Done: an item is done when its current status is. Its done time is its last entry into done,
  so an item reopened and finished again counts at its final finish. An item done, reopened and
  still open is work in progress again.
- Work in progress: not done, and started (or done once before, or in progress now).
- Changes are read in the order given (the tracker's changelog order). Timestamps that go
  backwards are clock skew when the statuses still chain (each change leaves the status the one
  before it entered): they are clamped to the change before; otherwise the changes are sorted
  by time. Changes dated before the item's creation are clamped to it; changes dated after
  `now` to `now`. Each correction is a problem of the item, never an exception.
- A status's category is its stage's when mapped, else what the trackers state for it (on any
  item of the connection, or on the change itself). A change into a status of no known category
  is reported and taken as not started; the status at creation is taken as not started silently
  (items are created in a backlog status).
- No history: started is taken as created for an item in progress or done, and the done time is
  the tracker's resolution date when it has one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from itertools import islice, pairwise
from operator import itemgetter, le
from typing import NamedTuple

from spm_sync.bulk import paused_gc
from spm_sync.domain import StatusCategory
from spm_sync.flow.history import FlowItem, FlowProblem, ItemRef, StatusChange
from spm_sync.flow.settings import FlowClass, FlowSettings, FlowStart

_NO_TIME = timedelta(0)
_AT, _TO_CATEGORY = itemgetter(1), itemgetter(3, 4)
"""`StatusChange` fields as C-level getters, for whole-history passes."""
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


class _Status(NamedTuple):
    category: StatusCategory | None
    stage: str | None
    unmapped: bool
    active: bool
    wait: bool


@paused_gc()
def derive_flows(
    items: Iterable[FlowItem], settings: FlowSettings, now: datetime
) -> dict[ItemRef, ItemFlow]:
    """Flow facts per item. `now` is aware UTC; changes after it are clock skew."""
    items = list(items)
    tracker_categories = _tracker_categories(items)
    books = {
        connection: _Book({}, categories, settings)
        for connection, categories in tracker_categories.items()
    }
    return {item.ref: _flow_of(item, books[item.ref[0]], settings, now) for item in items}


def _tracker_categories(items: list[FlowItem]) -> dict[str, dict[str, StatusCategory]]:
    """Each connection's status → category, as the trackers state it: from the items' current
    statuses first, then from the changes that carry one. A name stated with two categories
    keeps the first from the items, else the lowest (To Do before In Progress before Done), so
    the answer never depends on the order of the input."""
    stated: dict[str, set[tuple[str, StatusCategory | None]]] = {}
    categories: dict[str, dict[str, StatusCategory]] = {}
    for item in items:
        connection = item.ref[0]
        per_connection = categories.get(connection)
        if per_connection is None:
            per_connection = categories[connection] = {}
            stated[connection] = set()
        per_connection.setdefault(item.status.casefold(), item.status_category)
        stated[connection].update(map(_TO_CATEGORY, item.changes))
    order = list(StatusCategory)
    for connection, pairs in stated.items():
        per_connection = categories[connection]
        by_change = sorted(
            ((status.casefold(), order.index(c), c) for status, c in pairs if c is not None),
            reverse=True,
        )
        # Reversed, so the lowest category of a name is written last and wins.
        from_changes = {status: category for status, _, category in by_change}
        for status, category in from_changes.items():
            per_connection.setdefault(status, category)
    return categories


def flow_problems(flows: Iterable[ItemFlow]) -> list[FlowProblem]:
    """Every item's problems as report rows."""
    return [FlowProblem(flow.ref, reason) for flow in flows for reason in flow.problems]


class _Book:
    """Status name → what it means, memoised per connection (a few dozen names serve millions
    of changes)."""

    __slots__ = ("_categories", "_settings", "classes", "memo")

    def __init__(
        self,
        memo: dict[str, _Status],
        categories: dict[str, StatusCategory],
        settings: FlowSettings,
    ) -> None:
        self.memo = memo
        self.classes: dict[str, FlowClass] = {}
        self._categories = categories
        self._settings = settings

    def flow_class(self, item_type: str) -> FlowClass:
        known = self.classes.get(item_type)
        if known is None:
            known = self.classes[item_type] = self._settings.flow_class(item_type)
        return known

    def __call__(self, status: str) -> _Status:
        known = self.memo.get(status)
        if known is not None:
            return known
        folded = status.casefold()
        settings = self._settings
        stage = settings.stage_map.stage_of(status)
        category = stage.category if stage is not None else self._categories.get(folded)
        known = _Status(
            category=category,
            stage=stage.name if stage is not None else None,
            unmapped=stage is None and settings.stage_map.configured,
            active=folded in settings.active_statuses,
            wait=folded in settings.wait_statuses,
        )
        self.memo[status] = known
        return known


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
    last: _Status | None
    last_at: datetime


def _flow_of(item: FlowItem, book: _Book, settings: FlowSettings, now: datetime) -> ItemFlow:
    problems: list[str] = []
    current = book(item.status)
    current_category = current.category or item.status_category
    unmapped: list[str] = [item.status] if current.unmapped else []
    unknown: list[str] = []
    if not item.changes:
        return _without_history(item, current, current_category, unmapped, book, problems)

    changes = _in_order(item.changes, item.created, now, problems)
    created = item.created
    if created is None:
        problems.append("no creation date: the first status change stands for it")
        created = changes[0].at
    walk = _walk(changes, created, book, settings, unmapped, unknown)
    started, done_at, last, stage_since = walk.started, walk.done_at, walk.last, walk.stage_since
    if changes[-1].to_status.casefold() != item.status.casefold():
        problems.append(
            f"history ends in '{changes[-1].to_status}' but the item is in '{item.status}' now "
            "(partial history)"
        )
        done_at, last, stage_since = None, current, None
    active, wait = walk.active, walk.wait
    is_done = current_category is _DONE
    done: datetime | None = None
    if is_done:
        done = done_at if done_at is not None else item.resolved
        if done is None:
            problems.append("done, but the history does not say when: left out of flow time")
        elif done_at is None:
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


def _walk(
    changes: Sequence[StatusChange],
    created: datetime,
    book: _Book,
    settings: FlowSettings,
    unmapped: list[str],
    unknown: list[str],
) -> _Walk:
    """One pass over the history, in order: start, last entry into done, stage entry, and
    active and waiting time from the flow start on. This loop runs for every change of the
    portfolio, so it reads plain locals only."""
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
    for _, at, _, to_status, to_category in changes:
        info = memo.get(to_status) or book(to_status)
        category = info.category or to_category
        if category is None or info.unmapped:
            _note_status(to_status, category is None, info.unmapped, unknown, unmapped)
        if measure and counting and previous is not None:
            if previous.active:
                active += at - segment_start
            elif previous.wait:
                wait += at - segment_start
        if category is _DONE:
            if done_at is None:
                done_at = at
                was_done = True
        else:
            done_at = None
            if category is _IN_PROGRESS and started is None:
                started, counting = at, True
        if info.stage != stage:
            stage, stage_since = info.stage, at
        previous, segment_start = info, at
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
    current: _Status,
    category: StatusCategory,
    unmapped: list[str],
    book: _Book,
    problems: list[str],
) -> ItemFlow:
    is_done = category is _DONE
    started = item.created if category is not _TODO else None
    done = item.resolved if is_done else None
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
        created=item.created,
        started=started,
        done=done,
        is_done=is_done,
        wip=category is _IN_PROGRESS,
        stage_entered=None,
        active_seconds=0.0,
        wait_seconds=0.0,
        problems=tuple(problems),
    )


def _name_statuses(problems: list[str], unmapped: list[str], unknown: list[str]) -> None:
    for status in unmapped:
        problems.append(f"status '{status}' is mapped to no stage")
    for status in unknown:
        problems.append(f"status '{status}' has no known category: taken as not started")


def _in_order(
    changes: tuple[StatusChange, ...],
    created: datetime | None,
    now: datetime,
    problems: list[str],
) -> tuple[StatusChange, ...] | list[StatusChange]:
    """The changes with timestamps that never go backwards, stay at or after creation and at
    or before `now`; the common case (nothing to correct) returns them untouched."""
    times = list(map(_AT, changes))
    ordered = all(map(le, times, islice(times, 1, None)))
    if ordered and (created is None or changes[0].at >= created) and changes[-1].at <= now:
        return changes
    fixed = list(changes)
    if not ordered:
        if _statuses_chain(fixed):
            skewed = 0
            for i in range(1, len(fixed)):
                if fixed[i].at < fixed[i - 1].at:
                    fixed[i] = fixed[i]._replace(at=fixed[i - 1].at)
                    skewed += 1
            problems.append(
                f"clock skew: {skewed} status change(s) dated before the change recorded ahead "
                "of them; taken as at that change"
            )
        else:
            fixed.sort(key=lambda change: change.at)
            problems.append("status changes out of order: sorted by time")
    if created is not None and fixed[0].at < created:
        early = sum(1 for change in fixed if change.at < created)
        fixed = [c if c.at >= created else c._replace(at=created) for c in fixed]
        problems.append(
            f"clock skew: {early} status change(s) dated before the item's creation; "
            "taken as at creation"
        )
    if fixed[-1].at > now:
        late = sum(1 for change in fixed if change.at > now)
        fixed = [c if c.at <= now else c._replace(at=now) for c in fixed]
        problems.append(f"clock skew: {late} status change(s) dated in the future; taken as now")
    return fixed


def _statuses_chain(changes: list[StatusChange]) -> bool:
    for before, after in pairwise(changes):
        if after.from_status is not None and (
            after.from_status.casefold() != before.to_status.casefold()
        ):
            return False
    return True
