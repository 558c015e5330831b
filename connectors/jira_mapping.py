"""Jira issue JSON → `WorkItem`: a pure function over one raw issue.

The shapes are those of `IssueBean` in specs/jira-platform-v3.json (search/jql, issue/bulkfetch)
and of Data Center's `/rest/api/2/search`, which share the field layout: `fields.status.
statusCategory.key` is one of new / indeterminate / done, `fields.issuelinks[]` carries either
`outwardIssue` (this issue is the link's source) or `inwardIssue` (it is the target), and
custom fields appear under their ids with a value whose shape depends on the field type (a
number, a select option `{"value": "8"}`, or a string).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.jira_fields import FieldMap, ResolvedField
from connectors.values import NotANumber, to_number
from spm_sync.core.domain import Level, Link, StatusCategory, WorkItem

SYSTEM_FIELDS: tuple[str, ...] = (
    "summary",
    "issuetype",
    "status",
    "parent",
    "labels",
    "issuelinks",
    "components",
    "created",
    "updated",
    "priority",
)
"""What the mapping reads besides the resolved custom fields; nothing else is requested.

Not `project`: an issue key is always `<project key>-<number>` (Jira re-keys the issues of a
project whose key changes, and an issue moved to another project gets a key there), so the
project comes from the key. The field's value (`ProjectDetails` with four avatar URLs) was a
sixth of every answer's bytes, and parsing JSON is most of what a pull costs the client.
Nested values are tested with `isinstance(…, dict)`: parsed JSON holds plain dicts, and the
`Mapping` ABC check costs several times more, for every value of 100 issues per answer."""

STATUS_CATEGORIES: Mapping[str, StatusCategory] = {
    "new": StatusCategory.TODO,
    "undefined": StatusCategory.TODO,
    "indeterminate": StatusCategory.IN_PROGRESS,
    "done": StatusCategory.DONE,
}


class MalformedIssue(ValueError):
    """The raw issue lacks what every WorkItem needs; the caller skips it with a warning."""


def requested_fields(fields: FieldMap) -> list[str]:
    """The `fields` list for search and bulkfetch calls: only what `normalize` reads."""
    return [*SYSTEM_FIELDS, *fields.custom_ids]


def parse_jira_datetime(value: Any, what: str) -> datetime:
    """Jira timestamps ("2024-05-01T10:15:30.000+0000") as UTC datetimes."""
    if not isinstance(value, str):
        raise MalformedIssue(f"{what} is missing")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise MalformedIssue(f"{what} {value!r} is not a timestamp") from None
    if parsed.tzinfo is None:
        raise MalformedIssue(f"{what} {value!r} has no time zone")
    return parsed.astimezone(UTC)


def normalize(
    raw_issue: Mapping[str, Any],
    fields: FieldMap,
    *,
    connection: str,
    base_url: str,
    levels: Mapping[str, Level],
) -> WorkItem:
    """One raw issue as a `WorkItem`. Raises `MalformedIssue` when it cannot be one.

    WSJF values that are not numbers never fail the item: the input is None and
    `field_problems[input]` says "<Field Name>: 'big' is not a number".
    """
    key = raw_issue.get("key")
    values = raw_issue.get("fields")
    if not isinstance(key, str) or not key:
        raise MalformedIssue("the issue has no key")
    if not isinstance(values, dict):
        raise MalformedIssue("the issue has no fields")
    issue_type = _name(values.get("issuetype"))
    if issue_type is None:
        raise MalformedIssue("the issue has no issuetype")
    status = values.get("status")
    status_name = _name(status)
    if status_name is None or not isinstance(status, dict):
        raise MalformedIssue("the issue has no status")
    category = (status.get("statusCategory") or {}).get("key")
    if not isinstance(category, str) or category not in STATUS_CATEGORIES:
        raise MalformedIssue(f"status {status_name!r} has no known statusCategory ({category!r})")
    updated_text = values.get("updated")
    updated = parse_jira_datetime(updated_text, "updated")
    created = values.get("created")

    numbers, problems = _wsjf_values(values, fields)
    project = key.rpartition("-")[0] or None
    return WorkItem(
        connection=connection,
        key=key,
        id=str(raw_issue.get("id") or key),
        type=issue_type,
        level=levels.get(issue_type),
        title=str(values.get("summary") or ""),
        status=status_name,
        status_category=STATUS_CATEGORIES[category],
        updated=updated,
        revision=str(updated_text),
        created=None if created is None else parse_jira_datetime(created, "created"),
        parent_key=_parent_key(values, fields),
        labels=tuple(str(label) for label in values.get("labels") or ()),
        links=_links(values.get("issuelinks") or ()),
        project=project,
        # Jira has no built-in team field; the project is how most organisations split teams,
        # and it is what the report groups orphan work and WIP by.
        team=project,
        components=tuple(n for c in values.get("components") or () if (n := _name(c))),
        url=f"{base_url.rstrip('/')}/browse/{key}",
        priority=_name(values.get("priority")),
        rank=_rank(values, fields.rank),
        field_problems=problems,
        **numbers,
    )


def _wsjf_values(
    values: Mapping[str, Any], fields: FieldMap
) -> tuple[dict[str, float | None], dict[str, str]]:
    """WSJF inputs with their problems, and the current score / cost of delay (what the
    planner compares with; a garbled current value reads as None and gets overwritten)."""
    numbers: dict[str, float | None] = {}
    problems: dict[str, str] = {}
    for name, resolved in fields.inputs.items():
        try:
            numbers[name] = to_number(values.get(resolved.id))
        except NotANumber as error:
            numbers[name] = None
            problems[name] = f"{resolved.name}: {error}"
    for name, written in (("wsjf_score", fields.score), ("cost_of_delay", fields.cost_of_delay)):
        if written is not None:
            try:
                numbers[name] = to_number(values.get(written.id))
            except NotANumber:
                numbers[name] = None
    return numbers, problems


def _name(value: Any) -> str | None:
    if isinstance(value, dict):
        name = value.get("name")
        return str(name) if isinstance(name, str) and name else None
    return None


def _issue_key(value: Any) -> str | None:
    """A reference to another issue: a key string, {"key": ...}, or Advanced Roadmaps'
    Parent Link shape {"data": {"key": ...}}."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, dict):
        if isinstance(value.get("key"), str):
            return str(value["key"])
        return _issue_key(value.get("data"))
    return None


def _parent_key(values: Mapping[str, Any], fields: FieldMap) -> str | None:
    """Cloud carries every level in `parent`; Data Center only sub-tasks, with Epic Link
    (story → epic) and Parent Link (epic → initiative) custom fields above them."""
    references = [values.get("parent")]
    references += [values.get(f.id) for f in (fields.epic_link, fields.parent_link) if f]
    for reference in references:
        if key := _issue_key(reference):
            return key
    return None


def _links(raw_links: Any) -> tuple[Link, ...]:
    links: list[Link] = []
    for entry in raw_links if isinstance(raw_links, list) else ():
        link_type = _name(entry.get("type")) if isinstance(entry, dict) else None
        if link_type is None:
            continue
        if (target := _issue_key(entry.get("outwardIssue"))) is not None:
            links.append(Link(link_type, "outward", target))
        elif (source := _issue_key(entry.get("inwardIssue"))) is not None:
            links.append(Link(link_type, "inward", source))
    return tuple(links)


def _rank(values: Mapping[str, Any], rank: ResolvedField | None) -> str | None:
    if rank is None:
        return None
    value = values.get(rank.id)
    return value if isinstance(value, str) and value else None
