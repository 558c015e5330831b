"""Azure DevOps revisions -> status changes: which revisions changed `System.State`.

A revision of the reporting feed is the item as it was after one update: `id`, `rev` and the
`fields` asked for (specs/ado-wit-7.1-examples/workItemRevisions/*). A revision changed the
state when its `System.State` differs from the state of the item's revision before it; the
feed sends an item's revisions in order, so `StateChanges` remembers each item's last state
across batches. Revisions that changed something else (a title, our own score write) are no
status change and are skipped.

A run that continues from the previous run's continuation token does not see the revision
before the first one it reads of an item. Then the revision itself says whether the state
changed, in the processes that keep `Microsoft.VSTS.Common.StateChangeDate` (all of Microsoft's
processes do): the service sets it to the revision's `System.ChangedDate` when the state changes
(see specs/ado-wit-7.1-examples/revisions/GET__list_workitem_revisions_paged.json: revision 2
keeps the creation date, revision 3 moves to Active and carries its own ChangedDate). Such a
change has no `from_status` (None; the flow engine copes). Without that field the revision is
taken as a change into its state, also with no `from_status`: a change the store may not need,
rather than one it misses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connectors.azure_devops_mapping import MalformedWorkItem, parse_datetime
from spm_sync.core.domain import StatusCategory
from spm_sync.core.history import StatusChange

WORK_ITEM_TYPE = "System.WorkItemType"
STATE = "System.State"
CHANGED_DATE = "System.ChangedDate"
STATE_CHANGE_DATE = "Microsoft.VSTS.Common.StateChangeDate"
REVISION_FIELDS = (WORK_ITEM_TYPE, STATE, CHANGED_DATE, STATE_CHANGE_DATE)
"""The fields a history pull asks for. `id` and `rev` come with every revision anyway (they are
properties of the revision, not fields), so `System.Id` and `System.Rev` are not asked for."""

Categorize = Callable[[str, str], StatusCategory | None]
"""(work item type, state) -> the state's category, None when unknown."""


class MalformedRevision(ValueError):
    """A revision without something every revision has (or with a bad date)."""


@dataclass(frozen=True, slots=True)
class Revision:
    """What a history pull reads of one revision."""

    item_id: int
    rev: int
    work_item_type: str
    state: str
    changed: datetime
    state_changed: datetime | None


def read_revision(raw: Any) -> Revision:
    """One element of the feed's `values`; raises `MalformedRevision` naming what is wrong."""
    if not isinstance(raw, Mapping):
        raise MalformedRevision(f"a revision is not an object: {type(raw).__name__}")
    values = raw.get("fields")
    if not isinstance(values, Mapping):
        values = {}
    item_id = _integer(raw.get("id", values.get("System.Id")))
    if item_id is None:
        raise MalformedRevision(f"a revision without a numeric id: {raw.get('id')!r}")
    rev = _integer(raw.get("rev", values.get("System.Rev")))
    if rev is None:
        raise MalformedRevision(f"a revision of work item {item_id} without a revision number")
    try:
        changed = parse_datetime(values.get(CHANGED_DATE), CHANGED_DATE, item_id)
        raw_state_changed = values.get(STATE_CHANGE_DATE)
        state_changed = (
            None
            if raw_state_changed is None
            else parse_datetime(raw_state_changed, STATE_CHANGE_DATE, item_id)
        )
    except MalformedWorkItem as problem:
        raise MalformedRevision(f"{problem} (revision {rev})") from None
    return Revision(
        item_id,
        rev,
        _text(values, WORK_ITEM_TYPE, item_id, rev),
        _text(values, STATE, item_id, rev),
        changed.astimezone(UTC),
        state_changed,
    )


class StateChanges:
    """Turns the revisions of one feed, in feed order, into status changes.

    Keeps the last revision number and state of every item seen, so a change is found across
    batches, and a revision the feed sends again is not counted twice.
    """

    def __init__(self, connection: str, categorize: Categorize) -> None:
        self.connection = connection
        self._categorize = categorize
        self._last: dict[int, tuple[int, str]] = {}

    def change_of(self, revision: Revision) -> StatusChange | None:
        """The status change `revision` made, or None when it made none (or was seen)."""
        before = self._last.get(revision.item_id)
        if before is not None and revision.rev <= before[0]:
            return None
        self._last[revision.item_id] = (revision.rev, revision.state)
        if before is not None:
            from_status: str | None = before[1]
            if from_status == revision.state:
                return None
        else:
            from_status = None
            if not _first_sets_state(revision):
                return None
        return StatusChange(
            item=(self.connection, str(revision.item_id)),
            at=revision.changed,
            from_status=from_status,
            to_status=revision.state,
            to_category=self._categorize(revision.work_item_type, revision.state),
        )


def _first_sets_state(revision: Revision) -> bool:
    """Whether the first revision read of an item changed its state (see module docstring)."""
    if revision.rev == 1 or revision.state_changed is None:
        return True
    return revision.state_changed == revision.changed


def _integer(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _text(values: Mapping[str, Any], name: str, item_id: int, rev: int) -> str:
    value = values.get(name)
    if not isinstance(value, str) or not value.strip():
        raise MalformedRevision(f"revision {rev} of work item {item_id}: {name} is missing")
    return value
