"""Status history of the Jira sandbox's issues: seeded per issue, extended by every status
change, served as Jira changelogs.

A seeded issue's history is derived on demand from its seed (id, creation time, the `updated`
it was loaded with, its status), so 200,000 issues cost no history memory until one of them
changes status: the sandbox then writes the derived history down and appends the change
(`record_status_change`). The derivation is deterministic (the issue id seeds it) and plausible:
every issue starts in "To Do"; work in progress went through "In Progress" (and "In Review" when
it is there now); done work went To Do → In Progress (→ In Review) → Done, and about one done
issue in five was reopened and finished again. Every change falls between creation and the
seed's `updated`.

Shapes: `Changelog` and `ChangeDetails` of specs/jira-platform-v3.json. Data Center items carry
no `fieldId` (it came with Cloud); both flavours carry `field: "status"`, the status ids in
`from`/`to` and the names in `fromString`/`toString`.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from typing import Any

from connectors.sandbox.jira_render import RenderContext, format_time
from connectors.sandbox.jira_store import IssueStore, StoredIssue

HistoryEntry = tuple[int, int, str, str]
"""(changelog id, when in epoch ms, from status, to status)."""
HISTORY_STATUSES = {"To Do": "To Do", "In Progress": "In Progress", "In Review": "In Progress",
                    "Done": "Done"}  # fmt: skip
"""The statuses seeded histories pass through, with their categories."""
REOPENED_SHARE = 0.2
SEEDED_IDS_PER_ISSUE = 16
"""Seeded changelog ids are `issue id × 16 + n`; changes made later get ids above all of them."""
LATER_IDS_START = 10**12


def register_history_statuses(store: IssueStore) -> None:
    """Make the statuses seeded histories use known to the site (after the seeds' own, so the
    ids the seeds' statuses got do not move)."""
    for name, category in HISTORY_STATUSES.items():
        store.add_status(name, category)


def history_of(issue: StoredIssue) -> tuple[HistoryEntry, ...]:
    """Every status change of `issue`, oldest first."""
    if issue.history is None:
        return seeded_history(issue)
    return issue.history


def record_status_change(store: IssueStore, issue: StoredIssue, new_status: str) -> None:
    """Append "status: <current> → `new_status`", now; call before changing the status."""
    if new_status == issue.status:
        return
    store.changelog_ids += 1
    entry = (LATER_IDS_START + store.changelog_ids, store.now_millis(), issue.status, new_status)
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
        entries.append((issue.id * SEEDED_IDS_PER_ISSUE + number, moment, previous, status))
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
    """One `Changelog` with its single `ChangeDetails` item."""
    changelog_id, moment, before, after = entry
    statuses = context.store.statuses
    item: dict[str, Any] = {"field": "status", "fieldtype": "jira"}
    if context.flavour == "cloud":
        item["fieldId"] = "status"
    item.update(
        {
            "from": statuses.get(before, ("1", ""))[0],
            "fromString": before,
            "to": statuses.get(after, ("1", ""))[0],
            "toString": after,
        }
    )
    return {
        "id": str(changelog_id),
        "author": author_json(context),
        "created": format_time(moment, context.zone),
        "items": [item],
    }


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


def timeline(issues: Iterable[StoredIssue]) -> list[tuple[int, int, HistoryEntry]]:
    """Every change of `issues` as (when, issue id, entry), in bulk changelog order: "sorted by
    changelog date and issue IDs, starting from the oldest changelog and smallest issue ID"."""
    rows = [(entry[1], issue.id, entry) for issue in issues for entry in history_of(issue)]
    rows.sort(key=lambda row: (row[0], row[1], row[2][0]))
    return rows
