"""Status history of the Jira sandbox's issues: seeded per issue, extended by every status
change and move, served as Jira changelogs.

A seed's own `status_history` is taken as it is. Otherwise an issue's history is derived on
demand from its seed (id, creation time, the `updated` it was loaded with, its status), so
200,000 issues cost no history memory until one of them changes status or moves: the sandbox
then writes the derived history down and appends the change (`record_status_change`,
`record_move`). The derivation is deterministic (the issue id seeds it) and plausible: every
issue starts in "To Do"; work in progress went through "In Progress" (and "In Review" when it is
there now); done work went To Do → In Progress (→ In Review) → Done, and about one done issue
in five was reopened and finished again. Every change falls between creation and the seed's
`updated`.

Shapes: `Changelog` and `ChangeDetails` of specs/jira-platform-v3.json. Data Center items carry
no `fieldId` (it came with Cloud); both flavours carry `field: "status"`, the status ids in
`from`/`to` and the names in `fromString`/`toString`. A move to another project is one
changelog with a `Key` item (old key → new key) and a `project` item (old project → new).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from connectors.sandbox.jira_render import RenderContext, format_time
from connectors.sandbox.jira_store import SEEDED_IDS_PER_ISSUE, IssueStore, StoredIssue


class HistoryEntry(NamedTuple):
    """One change: `before` → `after` of `field` ("status"; "Key" for a move, with keys)."""

    id: int
    at: int
    """Epoch milliseconds."""
    before: str
    after: str
    field: str = "status"


MOVE = "Key"
HISTORY_STATUSES = {"To Do": "To Do", "In Progress": "In Progress", "In Review": "In Progress",
                    "Done": "Done"}  # fmt: skip
"""The statuses seeded histories pass through, with their categories."""
REOPENED_SHARE = 0.2
LATER_IDS_START = 10**12
"""Changes made after loading get ids above every seeded one (`issue id × 1024 + n`)."""


def register_history_statuses(store: IssueStore) -> None:
    """Make the statuses histories pass through known to the site (after the seeds' own, so
    the ids the seeds' statuses got do not move)."""
    for name, category in HISTORY_STATUSES.items():
        store.add_status(name, category)
    for issue in store.by_id.values():
        for entry in issue.history or ():
            for name in entry[2:4]:
                store.add_status(name, guessed_category(name))


def guessed_category(status: str) -> str:
    """The category of a status the site does not know yet, from its name."""
    categories = {"done": "Done", "closed": "Done", "to do": "To Do", "backlog": "To Do"}
    return categories.get(status.lower(), "In Progress")


def history_of(issue: StoredIssue) -> tuple[HistoryEntry, ...]:
    """Every change of `issue` (status changes and moves), oldest first."""
    if issue.history is None:
        return seeded_history(issue)
    return tuple(HistoryEntry(*entry) for entry in issue.history)


def status_history_of(issue: StoredIssue) -> list[HistoryEntry]:
    return [entry for entry in history_of(issue) if entry.field == "status"]


def record_status_change(store: IssueStore, issue: StoredIssue, new_status: str) -> None:
    """Append "status: <current> → `new_status`", now; call before changing the status."""
    if new_status != issue.status:
        _record(store, issue, issue.status, new_status, "status")


def record_move(store: IssueStore, issue: StoredIssue, old_key: str) -> None:
    """Append "Key: `old_key` → <current key>", now; call after the move."""
    _record(store, issue, old_key, issue.key, MOVE)


def _record(store: IssueStore, issue: StoredIssue, before: str, after: str, field: str) -> None:
    store.changelog_ids += 1
    entry = HistoryEntry(
        LATER_IDS_START + store.changelog_ids, store.now_millis(), before, after, field
    )
    issue.history = (*history_of(issue), entry)


def seeded_history(issue: StoredIssue) -> tuple[HistoryEntry, ...]:
    """The history an issue had when it was seeded; see the module docstring."""
    rng = random.Random(issue.id * 7919 + 13)
    path = _seeded_path(issue.status, issue.status_category, rng)
    start, end = issue.created, max(issue.settled, issue.created + len(path))
    moments = sorted(start + 1 + int(rng.random() * (end - start - 1)) for _ in path)
    if path and issue.status_category != "To Do":
        moments[-1] = end  # the last move is what `updated` last recorded
    entries = []
    previous = "To Do"
    for number, (moment, status) in enumerate(zip(_distinct(moments), path, strict=True)):
        entries.append(
            HistoryEntry(issue.id * SEEDED_IDS_PER_ISSUE + number, moment, previous, status)
        )
        previous = status
    return tuple(entries)


def _seeded_path(status: str, category: str, rng: random.Random) -> list[str]:
    """The statuses after "To Do", in order, ending in `status`."""
    if category == "To Do":
        return [] if status == "To Do" else [status]
    path = ["In Progress"]
    if category == "Done":
        if rng.random() < 0.5:
            path.append("In Review")
        path.append("Done")
        if rng.random() < REOPENED_SHARE:
            path += ["In Progress", "Done"]
    if path[-1] != status:
        path.append(status)
    return path


def _distinct(moments: list[int]) -> Iterator[int]:
    """Strictly increasing times (two changes of one issue in the same millisecond read as
    one moment, which Jira does not record)."""
    last = None
    for moment in moments:
        if last is not None and moment <= last:
            moment = last + 1
        last = moment
        yield moment


# -- rendering ---------------------------------------------------------------------------------
def author_json(context: RenderContext) -> dict[str, Any]:
    """The sandbox's one human, as `UserDetails` (Cloud by account id, Data Center by name)."""
    if context.flavour == "cloud":
        account = "5b10ac8d82e05b22cc7d4ef5"
        return {
            "self": f"{context.api}/user?accountId={account}",
            "accountId": account,
            "accountType": "atlassian",
            "displayName": "Alex Planner",
            "active": True,
            "timeZone": "Etc/UTC",
        }
    return {
        "self": f"{context.api}/user?username=alex",
        "name": "alex",
        "key": "JIRAUSER10001",
        "displayName": "Alex Planner",
        "active": True,
        "timeZone": "Etc/UTC",
    }


def changelog_json(context: RenderContext, entry: HistoryEntry) -> dict[str, Any]:
    """One `Changelog`: a status change's item, or a move's `Key` and `project` items."""
    items = _move_items(context, entry) if entry.field == MOVE else [_status_item(context, entry)]
    return {
        "id": str(entry.id),
        "author": author_json(context),
        "created": format_time(entry.at, context.zone),
        "items": items,
    }


def _status_item(context: RenderContext, entry: HistoryEntry) -> dict[str, Any]:
    statuses = context.store.statuses
    item: dict[str, Any] = {"field": "status", "fieldtype": "jira"}
    if context.flavour == "cloud":
        item["fieldId"] = "status"
    item.update(
        {
            "from": statuses.get(entry.before, ("1", ""))[0],
            "fromString": entry.before,
            "to": statuses.get(entry.after, ("1", ""))[0],
            "toString": entry.after,
        }
    )
    return item


def _move_items(context: RenderContext, entry: HistoryEntry) -> list[dict[str, Any]]:
    projects = context.store.projects
    before, after = (projects[key.rpartition("-")[0]] for key in (entry.before, entry.after))
    project: dict[str, Any] = {"field": "project", "fieldtype": "jira"}
    if context.flavour == "cloud":
        project["fieldId"] = "project"
    project.update(
        {
            "from": str(before.id),
            "fromString": before.name,
            "to": str(after.id),
            "toString": after.name,
        }
    )
    key = {"field": MOVE, "fieldtype": "jira", "fromString": entry.before, "toString": entry.after}
    return [project, key]


def page_of_changelogs(context: RenderContext, issue: StoredIssue) -> dict[str, Any]:
    """`PageOfChangelogs` for `expand=changelog`: the whole history, most recent first (the
    spec's wording for search's `changelog` expansion)."""
    histories = [changelog_json(context, entry) for entry in reversed(history_of(issue))]
    return {
        "startAt": 0,
        "maxResults": len(histories),
        "total": len(histories),
        "histories": histories,
    }


def timeline(
    issues: Iterable[StoredIssue], field_ids: Iterable[str] = ()
) -> list[tuple[int, int, HistoryEntry]]:
    """The changes of `issues` as (when, issue id, entry), in bulk changelog order: "sorted by
    changelog date and issue IDs, starting from the oldest changelog and smallest issue ID".
    `field_ids` filters (empty: all): "status" keeps status changes, "project" moves."""
    wanted = set(field_ids)
    rows = [
        (entry.at, issue.id, entry)
        for issue in issues
        for entry in history_of(issue)
        if not wanted or _field_id(entry) in wanted
    ]
    rows.sort(key=lambda row: (row[0], row[1], row[2].id))
    return rows


def _field_id(entry: HistoryEntry) -> str:
    return "project" if entry.field == MOVE else entry.field
