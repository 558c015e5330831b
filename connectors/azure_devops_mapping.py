"""Azure DevOps work item JSON -> the normalized `WorkItem`: a pure function over plain data.

The input is one element of the `workitemsbatch` answer (specs/ado-wit-7.1.json `WorkItem`:
`id`, `rev`, `fields` keyed by reference name, `relations` when `$expand=relations`), as in the
examples `workItemsBatch/POST__...json` and `workItems/GET__wit_WorkItems_ids-_ids___expand-all
.json`. Field reference names come in through `FieldMap`; nothing here reads config or does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

from connectors.azure_devops_fields import PARENT_FIELD, TAGS_FIELD, FieldMap
from connectors.values import number_or_problem
from spm_sync.core.domain import WSJF_INPUTS, Level, Link, StatusCategory, WorkItem

HIERARCHY_PARENT = "System.LinkTypes.Hierarchy-Reverse"
HIERARCHY_CHILD = "System.LinkTypes.Hierarchy-Forward"
RELATED = "System.LinkTypes.Related"

CATEGORY_OF_STATE_CATEGORY: Mapping[str, StatusCategory] = {
    "proposed": StatusCategory.TODO,
    "inprogress": StatusCategory.IN_PROGRESS,
    "resolved": StatusCategory.IN_PROGRESS,
    "completed": StatusCategory.DONE,
    "removed": StatusCategory.DONE,
}
"""The state categories of `GET _apis/wit/workitemtypes/{type}/states` (`WorkItemStateColor.
category`), folded into the three buckets both trackers share."""

SYSTEM_STATE_CATEGORIES: Mapping[str, StatusCategory] = {
    # Proposed
    "new": StatusCategory.TODO,
    "to do": StatusCategory.TODO,
    "proposed": StatusCategory.TODO,
    "approved": StatusCategory.TODO,
    "design": StatusCategory.TODO,
    # In Progress, Resolved
    "active": StatusCategory.IN_PROGRESS,
    "doing": StatusCategory.IN_PROGRESS,
    "committed": StatusCategory.IN_PROGRESS,
    "in progress": StatusCategory.IN_PROGRESS,
    "open": StatusCategory.IN_PROGRESS,
    "ready": StatusCategory.IN_PROGRESS,
    "in planning": StatusCategory.IN_PROGRESS,
    "resolved": StatusCategory.IN_PROGRESS,
    # Completed, Removed
    "done": StatusCategory.DONE,
    "closed": StatusCategory.DONE,
    "completed": StatusCategory.DONE,
    "inactive": StatusCategory.DONE,
    "removed": StatusCategory.DONE,
}
"""The system states of Microsoft's processes (Basic, Agile, Scrum, CMMI, and the test work
item types they share), by name, folded like `CATEGORY_OF_STATE_CATEGORY`. Source: "About
workflow states in backlogs and boards", learn.microsoft.com/azure/devops/boards/work-items/
workflow-and-state-categories (the table of each process's states per category). These
categories are fixed: "You can't modify an inherited state (you can't change its name, color,
or category), but you can hide it" ("Customize the workflow (Inheritance process)", Supported
and unsupported customizations, learn.microsoft.com/azure/devops/organizations/settings/work/
customize-process-workflow). A state name means the same bucket in every process (CMMI's
Resolved is In Progress for requirements and Resolved for bugs: both In Progress here).

So the connector reads `workitemtypes/{type}/states` only for a type with a state this table
does not know (a custom state), and then the type's own table wins. What it cannot see: an
on-premises XML process, or a custom state that reuses a system state's name on a type that
lacks that system state, can put the name in another category; such a state is read as the
table says. The table is also the fallback when the states cannot be read."""

_WORK_ITEM_URL = re.compile(r"/_apis/wit/workItems/(\d+)/?$", re.IGNORECASE)
_DIRECTED = re.compile(r"^(?P<base>.+)-(?P<end>Forward|Reverse)$")


class MalformedWorkItem(ValueError):
    """An item the service sent without something every item has (or with a bad date)."""


@dataclass(frozen=True, slots=True)
class MappingContext:
    """What `normalize` needs besides the item: who we are and how to read states.

    `state_categories` maps a work item type to its states' categories, as read from the
    service (only types with a custom state are read); other types use `SYSTEM_STATE_CATEGORIES`
    by state name, and a state found in neither counts as To Do (the connector warns about it).
    """

    connection: str
    organization_url: str
    project: str
    levels: Mapping[str, Level] = field(default_factory=dict)
    state_categories: Mapping[str, Mapping[str, StatusCategory]] = field(default_factory=dict)


def state_category(
    work_item_type: str, state: str, tables: Mapping[str, Mapping[str, StatusCategory]]
) -> StatusCategory | None:
    """The category of `state`, or None when neither the type's table nor the defaults know it."""
    table = tables.get(work_item_type)
    if table is not None:
        for name, category in table.items():
            if name.casefold() == state.casefold():
                return category
    return SYSTEM_STATE_CATEGORIES.get(state.strip().casefold())


def category_of(state_category_name: str | None) -> StatusCategory | None:
    """`WorkItemStateColor.category` ("Proposed", "InProgress", ...) -> our bucket."""
    if not state_category_name:
        return None
    return CATEGORY_OF_STATE_CATEGORY.get(state_category_name.replace(" ", "").casefold())


def normalize(raw: Mapping[str, Any], fields: FieldMap, context: MappingContext) -> WorkItem:
    """One work item, normalized. Raises `MalformedWorkItem` naming what is missing or bad."""
    values: Mapping[str, Any] = raw.get("fields") or {}
    item_id = raw.get("id", values.get("System.Id"))
    if isinstance(item_id, bool) or not isinstance(item_id, int):
        raise MalformedWorkItem(f"work item without a numeric id: {item_id!r}")
    work_item_type = _required_text(values, "System.WorkItemType", item_id)
    state = _required_text(values, "System.State", item_id)
    revision = raw.get("rev", values.get("System.Rev"))
    if isinstance(revision, bool) or not isinstance(revision, int):
        raise MalformedWorkItem(f"work item {item_id}: no revision (rev / System.Rev)")
    numbers, problems = _wsjf_inputs(values, fields)
    project = values.get("System.TeamProject") or context.project
    parent, links = _relations(raw.get("relations") or (), item_id)
    return WorkItem(
        connection=context.connection,
        key=str(item_id),
        id=str(item_id),
        type=work_item_type,
        level=context.levels.get(work_item_type),
        title=_required_text(values, "System.Title", item_id),
        status=state,
        status_category=(
            state_category(work_item_type, state, context.state_categories) or StatusCategory.TODO
        ),
        updated=parse_datetime(values.get("System.ChangedDate"), "System.ChangedDate", item_id),
        revision=str(revision),
        created=_optional_datetime(values.get("System.CreatedDate"), item_id),
        parent_key=parent or _parent_field(values.get(PARENT_FIELD)),
        labels=parse_tags(values.get(TAGS_FIELD)),
        links=links,
        project=str(project),
        team=values.get("System.AreaPath"),
        url=web_url(context.organization_url, str(project), item_id),
        wsjf_score=number_or_problem(values.get(fields.score))[0] if fields.score else None,
        cost_of_delay=(
            number_or_problem(values.get(fields.cost_of_delay))[0] if fields.cost_of_delay else None
        ),
        priority=_priority(values.get(fields.priority)),
        rank=number_or_problem(values.get(fields.rank))[0],
        field_problems=problems,
        business_value=numbers["business_value"],
        time_criticality=numbers["time_criticality"],
        risk_reduction=numbers["risk_reduction"],
        job_size=numbers["job_size"],
    )


def web_url(organization_url: str, project: str, item_id: int) -> str:
    """The page people open: `{org}/{project}/_workitems/edit/{id}`."""
    return f"{organization_url.rstrip('/')}/{quote(project, safe='')}/_workitems/edit/{item_id}"


def parse_tags(value: object) -> tuple[str, ...]:
    """`System.Tags` is one plain-text value, "tag; other tag" (specs/API_NOTES.md)."""
    if not isinstance(value, str):
        return ()
    return tuple(tag.strip() for tag in value.split(";") if tag.strip())


def parse_datetime(value: object, name: str, item_id: int) -> datetime:
    """Azure DevOps dates are UTC ISO-8601 with up to 7 fractional digits and a `Z`."""
    if not isinstance(value, str) or not value.strip():
        raise MalformedWorkItem(f"work item {item_id}: {name} is missing")
    text = value.strip()
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)  # Python keeps microseconds, .NET sends ticks
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise MalformedWorkItem(f"work item {item_id}: {name} is not a date: {value!r}") from None
    if moment.tzinfo is None:
        raise MalformedWorkItem(f"work item {item_id}: {name} has no time zone: {value!r}")
    return moment


def _optional_datetime(value: object, item_id: int) -> datetime | None:
    if value is None:
        return None
    return parse_datetime(value, "System.CreatedDate", item_id)


def _required_text(values: Mapping[str, Any], name: str, item_id: int) -> str:
    value = values.get(name)
    if not isinstance(value, str) or not value.strip():
        raise MalformedWorkItem(f"work item {item_id}: {name} is missing")
    return value


def _wsjf_inputs(
    values: Mapping[str, Any], fields: FieldMap
) -> tuple[dict[str, float | None], dict[str, str]]:
    numbers: dict[str, float | None] = {}
    problems: dict[str, str] = {}
    for name in WSJF_INPUTS:
        reference_name = getattr(fields, name)
        number, problem = number_or_problem(values.get(reference_name))
        numbers[name] = number
        if problem:
            problems[name] = f"{reference_name}: {problem}"
    return numbers, problems


def _priority(value: object) -> str | None:
    number, _ = number_or_problem(value)
    if number is not None and number.is_integer():
        return str(int(number))
    return None if value is None or value == "" else str(value)


def _parent_field(value: object) -> str | None:
    number, _ = number_or_problem(value)
    return str(int(number)) if number is not None and number.is_integer() else None


def _relations(relations: object, item_id: int) -> tuple[str | None, tuple[Link, ...]]:
    """Parent from the Hierarchy-Reverse relation; other work item links as `Link`s.

    Related links are undirected (both items carry the same `System.LinkTypes.Related`), so they
    read as outward; `X-Forward`/`X-Reverse` become type X outward/inward. Hyperlinks, artifact
    links and attachments point outside the tracker and are skipped.
    """
    parent: str | None = None
    links: list[Link] = []
    for relation in relations if isinstance(relations, list | tuple) else ():
        if not isinstance(relation, Mapping):
            continue
        rel = relation.get("rel")
        target = _target_id(relation.get("url"))
        if not isinstance(rel, str) or target is None or target == str(item_id):
            continue
        if rel == HIERARCHY_PARENT:
            parent = parent or target
        elif rel == HIERARCHY_CHILD:
            continue
        elif (directed := _DIRECTED.match(rel)) is not None:
            direction: Literal["outward", "inward"] = (
                "outward" if directed["end"] == "Forward" else "inward"
            )
            links.append(Link(directed["base"], direction, target))
        else:
            links.append(Link(rel, "outward", target))
    return parent, tuple(dict.fromkeys(links))


def _target_id(url: object) -> str | None:
    if not isinstance(url, str):
        return None
    match = _WORK_ITEM_URL.search(url)
    return match.group(1) if match else None
