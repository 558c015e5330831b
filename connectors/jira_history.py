"""Jira changelog JSON → `StatusChange`: pure functions over one issue's changelogs.

A changelog (`Changelog` in specs/jira-platform-v3.json; the same shape in Data Center's
`expand=changelog`) has a `created` time and `items`; a status change is an item whose field is
`status` (Cloud also sets `fieldId: "status"`; Data Center items have no `fieldId`), with the
status ids in `from` / `to` and the names in `fromString` / `toString`. The category of the new
status is not in the changelog: `StatusCategories` maps status ids to categories from the
`StatusDetails` Jira serves elsewhere (issue fields, `GET status`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from connectors.jira_mapping import STATUS_CATEGORIES, MalformedIssue, parse_jira_datetime
from spm_sync.core.domain import ItemRef, StatusCategory
from spm_sync.core.history import StatusChange

STATUS_FIELD = "status"
MOVE_FIELD = "key"
"""A move to another project writes a `Key` item (the old key → the new one)."""


class RawStatusChange(NamedTuple):
    """A status change before its category is known (read on a worker thread; the category
    map may need one more request, made on the caller's thread)."""

    key: str
    at: datetime
    from_status: str | None
    to_status: str
    to_id: str | None


class StatusCategories:
    """Status id → `StatusCategory`, learned from `StatusDetails` JSON wherever Jira serves it.

    Learning is a dict lookup per status seen, so the pull can feed every issue's status
    through it; an id seen before is not parsed again.
    """

    def __init__(self) -> None:
        self._by_id: dict[str, StatusCategory | None] = {}
        self.complete = False
        """True once the site's whole status list (`GET status`) was learned."""

    def learn(self, status: Any) -> None:
        if not isinstance(status, dict):
            return
        status_id = status.get("id")
        if status_id is None or str(status_id) in self._by_id:
            return
        category = status.get("statusCategory")
        key = category.get("key") if isinstance(category, dict) else None
        self._by_id[str(status_id)] = STATUS_CATEGORIES.get(key) if isinstance(key, str) else None

    def learn_all(self, statuses: Iterable[Any]) -> None:
        for status in statuses:
            self.learn(status)
        self.complete = True

    def knows(self, status_id: str | None) -> bool:
        return status_id is None or status_id in self._by_id

    def remembered(self) -> str | None:
        """What the next run starts from (the connector's history cursor): the categories of
        the statuses learned so far, as compact JSON; None when none is known."""
        if not self._by_id:
            return None
        known = {
            status: category.value if category else None
            for status, category in self._by_id.items()
        }
        return json.dumps({"status_categories": known}, separators=(",", ":"), sort_keys=True)

    def recall(self, remembered: str | None) -> None:
        """Learn what a previous run remembered, so a run whose changes name a status no
        pulled issue is in now need not read the site's status list again. A status the site
        added since is still unknown, and costs the one `GET status` it always did. Anything
        unreadable (a cursor of another version) is ignored: it only costs that request."""
        if not remembered:
            return
        try:
            known = json.loads(remembered).get("status_categories")
        except (ValueError, AttributeError):
            return
        if not isinstance(known, dict):
            return
        by_value = {category.value: category for category in StatusCategory}
        for status_id, value in known.items():
            if str(status_id) not in self._by_id:
                category = by_value.get(value) if isinstance(value, str) else None
                self._by_id[str(status_id)] = category

    def category(self, status_id: str | None) -> StatusCategory | None:
        return None if status_id is None else self._by_id.get(status_id)


def is_field(item: Mapping[str, Any], name: str) -> bool:
    field_id = item.get("fieldId")
    if isinstance(field_id, str) and field_id:
        return field_id.casefold() == name
    field = item.get("field")
    return isinstance(field, str) and field.casefold() == name


def raw_status_changes(key: str, histories: Iterable[Any]) -> tuple[list[RawStatusChange], int]:
    """The status changes among `histories` in the order Jira recorded them, and how many
    status items were unusable (no time, no new status): those are skipped, the caller
    reports the count.

    Recorded order is changelog id order (Jira numbers changelogs as it writes them), which
    search's `changelog` expansion lists most recent first and bulk changelogs by date; when an
    id is not a number, time order stands in. Ids rather than times, so a clock that went
    backwards shows as such to the flow engine instead of being sorted away.
    """
    ordered: list[tuple[int, RawStatusChange]] = []
    unusable = 0
    numbered = True
    for history in histories:
        if not isinstance(history, dict):
            unusable += 1
            continue
        items = [i for i in history.get("items") or () if isinstance(i, dict)]
        status_items = [item for item in items if is_field(item, STATUS_FIELD)]
        if not status_items:
            continue
        at = _moment(history.get("created"))
        changelog_id = str(history.get("id", ""))
        numbered = numbered and changelog_id.isdigit()
        for item in status_items:
            to_status = _text(item.get("toString"))
            if at is None or to_status is None:
                unusable += 1
                continue
            before, to_id = _text(item.get("fromString")), _text(item.get("to"))
            number = int(changelog_id) if changelog_id.isdigit() else 0
            ordered.append((number, RawStatusChange(key, at, before, to_status, to_id)))
    if numbered:
        ordered.sort(key=lambda pair: pair[0])  # stable: items of one changelog keep order
    else:
        ordered.sort(key=lambda pair: pair[1].at)
    return [change for _, change in ordered], unusable


def former_keys(histories: Iterable[Any]) -> list[str]:
    """Keys the issue had before moves between projects (`Key` items' `fromString`)."""
    keys: list[str] = []
    for history in histories:
        for item in history.get("items") or () if isinstance(history, dict) else ():
            if isinstance(item, dict) and is_field(item, MOVE_FIELD):
                old = _text(item.get("fromString"))
                if old is not None and old not in keys:
                    keys.append(old)
    return keys


def status_change(
    connection: str, raw: RawStatusChange, categories: StatusCategories
) -> StatusChange:
    item: ItemRef = (connection, raw.key)
    category = categories.category(raw.to_id)
    return StatusChange(item, raw.at, raw.from_status, raw.to_status, category)


def _moment(value: Any) -> datetime | None:
    """Changelog `created`: Jira's timestamp text; the spec's own example shows epoch seconds,
    so a number is read as epoch seconds (or milliseconds, when it is that large)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 10**11 else value
        return datetime.fromtimestamp(seconds, UTC)
    try:
        return parse_jira_datetime(value, "changelog created")
    except MalformedIssue:
        return None


def _text(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) and value else None
