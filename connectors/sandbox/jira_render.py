"""Builds Jira's JSON for stored issues on demand: `IssueBean` with the requested fields.

Shapes follow specs/jira-platform-v3.json (`IssueBean`, `IssueLink`, `LinkedIssue`,
`StatusDetails`, `IssueTypeDetails`, `ProjectDetails`, `Priority`, `FieldDetails`); where the
spec's own examples carry properties its schemas forbid (the project `insight` in issue fields,
a top-level `expand` in `BulkIssueResults`), the schema wins. API v2 and v3 differ only in rich
text: v2 serves `description` as a string, v3 as an Atlassian Document (ADF).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from connectors.sandbox.jira_fields import PRIORITIES, STATUS_CATEGORIES, FieldDef, Flavour
from connectors.sandbox.jira_store import IssueStore, StoredIssue
from connectors.sandbox.raw_json import RawJson, RenderCache, dumps

ISSUE_EXPAND = "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"
ID_ONLY_FIELDS = frozenset({"id", "key"})


@dataclass(frozen=True)
class RenderContext:
    store: IssueStore
    fields: tuple[FieldDef, ...]
    flavour: Flavour
    api_version: str
    base_url: str
    zone: ZoneInfo
    cache: RenderCache | None = None
    """Encoded issues for `encoded_issue`; None renders every time."""

    @property
    def api(self) -> str:
        return f"{self.base_url}/rest/api/{self.api_version}"


@dataclass(frozen=True)
class FieldSelection:
    """What a `fields` parameter asked for. `ids_only`: the caller wants issue ids, nothing
    else (the search/jql default); `keys_only`: at most id/key (the cheap, 5000-per-page case)."""

    fields: tuple[FieldDef, ...]
    ids_only: bool
    keys_only: bool

    @cached_property
    def cache_key(self) -> tuple[bool, tuple[str, ...]]:
        return self.ids_only, tuple(definition.id for definition in self.fields)


def parse_field_list(values: Any) -> list[str]:
    """`fields`, `expand`, `properties`… arrive as repeated parameters, comma lists, a JSON
    array or a single value: flatten them into names."""
    if not values:
        return []
    if not isinstance(values, list | tuple):
        values = [values]  # one value, not a sequence of characters
    tokens: list[str] = []
    for value in values:
        tokens.extend(part.strip() for part in str(value).split(",") if part.strip())
    return tokens


def select_fields(
    tokens: list[str], default: str, catalogue: tuple[FieldDef, ...]
) -> FieldSelection:
    """Resolve `*all`, `*navigable`, ids and `-field` exclusions (unknown names are ignored,
    as Jira ignores them)."""
    tokens = tokens or [default]
    renderable = [definition for definition in catalogue if definition.rendered]
    by_id = {definition.id: definition for definition in renderable}
    included: dict[str, FieldDef] = {}
    excluded: set[str] = set()
    positives = [token for token in tokens if not token.startswith("-")]
    if not positives:
        positives = ["*navigable"]
    for token in positives:
        if token == "*all":
            included.update((d.id, d) for d in renderable)
        elif token == "*navigable":
            included.update((d.id, d) for d in renderable if d.navigable)
        elif token in by_id:
            included[token] = by_id[token]
    for token in tokens:
        if token.startswith("-"):
            excluded.add(token[1:])
    chosen = tuple(d for d in included.values() if d.id not in excluded)
    ids_only = set(positives) == {"id"}
    keys_only = set(positives) <= ID_ONLY_FIELDS
    return FieldSelection(chosen, ids_only, keys_only)


def format_time(millis: int, zone: ZoneInfo) -> str:
    """Jira's timestamp format: 2024-05-02T12:00:00.000+0000, in the user's zone."""
    moment = datetime.fromtimestamp(millis / 1000, zone)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis % 1000:03d}{moment:%z}"


def adf_document(text: str | None) -> dict[str, Any] | None:
    """Plain text as an Atlassian Document: one paragraph per blank-line separated block."""
    if text is None:
        return None
    paragraphs = [block for block in text.split("\n\n") if block]
    return {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": block}]}
            for block in paragraphs
        ],
    }


def adf_text(document: dict[str, Any]) -> str:
    """The text of an Atlassian Document, paragraphs separated by blank lines."""

    def collect(node: Any) -> str:
        if not isinstance(node, dict):
            return ""
        if node.get("type") == "text":
            return str(node.get("text", ""))
        return "".join(collect(child) for child in node.get("content") or ())

    return "\n\n".join(collect(block) for block in document.get("content") or ())


# -- objects embedded in issue fields -----------------------------------------------------
def issuetype_json(context: RenderContext, name: str) -> dict[str, Any]:
    type_id, level, subtask = context.store.issue_types.get(name, (10002, 0, False))
    body: dict[str, Any] = {
        "self": f"{context.api}/issuetype/{type_id}",
        "id": str(type_id),
        "description": "",
        "iconUrl": f"{context.base_url}/images/icons/issuetypes/{name.lower()}.svg",
        "name": name,
        "subtask": subtask,
        "avatarId": 10300 + type_id % 100,
    }
    if context.flavour == "cloud":
        body["hierarchyLevel"] = level
    return body


def status_json(context: RenderContext, name: str) -> dict[str, Any]:
    status_id, category = context.store.statuses.get(name, ("1", "To Do"))
    category_id, category_key, colour = STATUS_CATEGORIES[category]
    return {
        "self": f"{context.api}/status/{status_id}",
        "description": "",
        "iconUrl": f"{context.base_url}/images/icons/statuses/generic.png",
        "name": name,
        "id": status_id,
        "statusCategory": {
            "self": f"{context.api}/statuscategory/{category_id}",
            "id": category_id,
            "key": category_key,
            "colorName": colour,
            "name": category,
        },
    }


def priority_json(context: RenderContext, name: str) -> dict[str, Any]:
    number = PRIORITIES.index(name) + 1 if name in PRIORITIES else 3
    return {
        "self": f"{context.api}/priority/{number}",
        "iconUrl": f"{context.base_url}/images/icons/priorities/{name.lower()}.svg",
        "name": name,
        "id": str(number),
    }


def project_json(context: RenderContext, key: str) -> dict[str, Any]:
    info = context.store.projects[key]
    avatar = f"{context.base_url}/secure/projectavatar?pid={info.id}"
    return {
        "self": f"{context.api}/project/{info.id}",
        "id": str(info.id),
        "key": info.key,
        "name": info.name,
        "projectTypeKey": "software",
        "simplified": False,
        "avatarUrls": {
            "48x48": avatar,
            "24x24": f"{avatar}&size=small",
            "16x16": f"{avatar}&size=xsmall",
            "32x32": f"{avatar}&size=medium",
        },
    }


def linked_issue_json(context: RenderContext, issue: StoredIssue) -> dict[str, Any]:
    """The short issue form inside links and `parent` (`LinkedIssue`)."""
    return {
        "id": str(issue.id),
        "key": issue.key,
        "self": f"{context.api}/issue/{issue.id}",
        "fields": {
            "summary": issue.summary,
            "status": status_json(context, issue.status),
            "priority": priority_json(context, issue.priority),
            "issuetype": issuetype_json(context, issue.type),
        },
    }


def link_type_json(context: RenderContext, name: str) -> dict[str, Any]:
    type_id, inward, outward = context.store.link_types[name]
    return {
        "id": type_id,
        "name": name,
        "inward": inward,
        "outward": outward,
        "self": f"{context.api}/issueLinkType/{type_id}",
    }


def issuelinks_json(context: RenderContext, issue: StoredIssue) -> list[dict[str, Any]]:
    """Each link seen from `issue`: `outwardIssue` when `issue` is the source, else
    `inwardIssue` (the getIssue example in the spec carries exactly one of the two)."""
    store, links = context.store, []
    for link in store.links_for(issue):
        outward = link.outward == issue.id
        other = store.by_id.get(link.inward if outward else link.outward)
        if other is None or other.id in store.hidden:
            continue
        links.append(
            {
                "id": str(link.id),
                "self": f"{context.api}/issueLink/{link.id}",
                "type": link_type_json(context, link.type),
                "outwardIssue" if outward else "inwardIssue": linked_issue_json(context, other),
            }
        )
    return links


def _parent_of(context: RenderContext, issue: StoredIssue, level: str) -> StoredIssue | None:
    """The parent, if `level` carries it in this flavour (Cloud: `parent` carries all)."""
    if issue.parent is None:
        return None
    parent = context.store.by_key.get(issue.parent)
    if parent is None or parent.id in context.store.hidden:
        return None
    if context.flavour == "cloud":
        return parent if level == "parent" else None
    return parent if context.store.parent_field(issue, parent) == level else None


def _option_json(context: RenderContext, value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    option_id = context.store.option_id(value)
    return {
        "self": f"{context.api}/customFieldOption/{option_id}",
        "value": value,
        "id": str(option_id),
    }


def _field_value(context: RenderContext, definition: FieldDef, issue: StoredIssue) -> Any:
    kind = definition.kind
    if kind == "number" or kind == "text":
        return issue.values.get(definition.slot or "")
    renderer = _RENDERERS[kind]
    return renderer(context, issue)


_RENDERERS: dict[str, Callable[[RenderContext, StoredIssue], Any]] = {
    "summary": lambda c, i: i.summary,
    "issuetype": lambda c, i: issuetype_json(c, i.type),
    "status": lambda c, i: status_json(c, i.status),
    "project": lambda c, i: project_json(c, i.project),
    "priority": lambda c, i: priority_json(c, i.priority),
    "labels": lambda c, i: list(i.labels),
    "components": lambda c, i: [
        {
            "self": f"{c.api}/component/{c.store.component_id(n)}",
            "id": str(c.store.component_id(n)),
            "name": n,
        }
        for n in i.components
    ],
    "created": lambda c, i: format_time(i.created, c.zone),
    "updated": lambda c, i: format_time(i.updated, c.zone),
    "issuelinks": issuelinks_json,
    "parent": lambda c, i: (
        linked_issue_json(c, parent) if (parent := _parent_of(c, i, "parent")) else None
    ),
    "description": lambda c, i: (
        i.description if c.api_version == "2" else adf_document(i.description)
    ),
    "option": lambda c, i: _option_json(c, i.team),
    "rank": lambda c, i: i.rank,
    "epic_link": lambda c, i: parent.key if (parent := _parent_of(c, i, "epic_link")) else None,
    "parent_link": lambda c, i: (
        {
            "hasEpicLinkFieldDependency": False,
            "showField": False,
            "data": {"id": p.id, "keyNum": p.number, "key": p.key, "summary": p.summary},
        }
        if (p := _parent_of(c, i, "parent_link"))
        else None
    ),
}


def render_issue(
    context: RenderContext,
    issue: StoredIssue,
    selection: FieldSelection,
    expand: Iterable[str] = (),
) -> dict[str, Any]:
    """One `IssueBean`. `names`/`schema` per issue only when `expand` asks (bulk fetch, get
    issue); search puts them once at the top level instead."""
    if selection.ids_only:
        return {"id": str(issue.id)}
    fields = {}
    for definition in selection.fields:
        value = _field_value(context, definition, issue)
        if value is not None or definition.kind != "parent":  # Jira omits an absent parent
            fields[definition.id] = value
    body: dict[str, Any] = {
        "expand": ISSUE_EXPAND,
        "id": str(issue.id),
        "self": f"{context.api}/issue/{issue.id}",
        "key": issue.key,
        "fields": fields,
    }
    wanted = set(expand)
    if "names" in wanted:
        body["names"] = names_of(selection.fields)
    if "schema" in wanted:
        body["schema"] = schema_of(selection.fields)
    return body


def encoded_issue(
    context: RenderContext,
    issue: StoredIssue,
    selection: FieldSelection,
    expand: Iterable[str] = (),
) -> RawJson:
    """`render_issue` encoded, from the context's cache while the store has not changed."""
    wanted = tuple(sorted(set(expand) & {"names", "schema"}))
    if context.cache is None:
        return RawJson(dumps(render_issue(context, issue, selection, wanted)))
    key = (issue.id, context.api_version, context.base_url, selection.cache_key, wanted)
    return context.cache.get(
        context.store.version, key, lambda: render_issue(context, issue, selection, wanted)
    )


def names_of(fields: Iterable[FieldDef]) -> dict[str, str]:
    return {definition.id: definition.name for definition in fields}


def schema_of(fields: Iterable[FieldDef]) -> dict[str, dict[str, Any]]:
    return {d.id: d.schema for d in fields if d.schema is not None}
