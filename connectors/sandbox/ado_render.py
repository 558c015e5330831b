"""Stored work items to the `WorkItem` JSON of `specs/ado-wit-7.1.json`.

Dates are written as the service writes them (`2014-12-29T20:49:20.77Z`: UTC, milliseconds
without trailing zeros); empty fields are left out of `fields`; relations point at
`{organization}/_apis/wit/workItems/{id}` and carry `isLocked` and the link type's `name`, as in
the official examples under `specs/ado-wit-7.1-examples/workItems/`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from connectors.sandbox.ado_fields import find_relation_type

HUMAN = {
    "displayName": "Dana Planner",
    "uniqueName": "dana.planner@example.com",
    "id": "4f1d2c3b-0a9e-4c57-9d61-2b8e5f7a1c01",
    "descriptor": "aad.ZGFuYS5wbGFubmVyQGV4YW1wbGUuY29t",
}
"""Who seeded items and who edits them in `touch` (a person on the team)."""

AUTOMATION = {
    "displayName": "spm-sync automation",
    "uniqueName": "automation@example.com",
    "id": "9a7e6d5c-4b3a-4210-8f9e-8d7c6b5a4e02",
    "descriptor": "aad.YXV0b21hdGlvbkBleGFtcGxlLmNvbQ",
}
"""Who writes through the API with the sandbox PAT."""


class Relation(NamedTuple):
    """A link as stored on its source: `target` is a work item id, or a URL for resource links."""

    rel: str
    target: int | str
    comment: str | None = None


def format_date(moment: datetime) -> str:
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3].rstrip("0").rstrip(".")
    return text + "Z"


def work_item_json(
    work_item_id: int,
    values: Mapping[str, Any],
    relations: Sequence[Relation],
    organization_url: str,
    *,
    fields: Iterable[str] | None = None,
    with_relations: bool = False,
    with_links: bool = False,
) -> dict[str, Any]:
    wanted = values.items() if fields is None else ((name, values.get(name)) for name in fields)
    url = f"{organization_url}/_apis/wit/workItems/{work_item_id}"
    body: dict[str, Any] = {
        "id": work_item_id,
        "rev": values["System.Rev"],
        "fields": {name: _json_value(value) for name, value in wanted if value is not None},
    }
    if with_relations and relations:
        body["relations"] = [relation_json(relation, organization_url) for relation in relations]
    if with_links:
        work_item_type = str(values["System.WorkItemType"])
        body["_links"] = _item_links(url, organization_url, work_item_id, work_item_type)
    body["url"] = url
    return body


def relation_json(relation: Relation, organization_url: str) -> dict[str, Any]:
    relation_type = find_relation_type(relation.rel)
    name = relation_type.name if relation_type else relation.rel
    attributes: dict[str, Any] = {"isLocked": False, "name": name}
    if relation.comment:
        attributes["comment"] = relation.comment
    if isinstance(relation.target, int):
        url = f"{organization_url}/_apis/wit/workItems/{relation.target}"
    else:
        url = relation.target
    return {"rel": relation.rel, "url": url, "attributes": attributes}


def _json_value(value: Any) -> Any:
    return format_date(value) if isinstance(value, datetime) else value


def _item_links(
    url: str, organization_url: str, work_item_id: int, work_item_type: str
) -> dict[str, Any]:
    return {
        "self": {"href": url},
        "workItemUpdates": {"href": f"{url}/updates"},
        "workItemRevisions": {"href": f"{url}/revisions"},
        "workItemComments": {"href": f"{url}/comments"},
        "html": {"href": f"{organization_url}/_workitems/edit/{work_item_id}"},
        "workItemType": {"href": f"{organization_url}/_apis/wit/workItemTypes/{work_item_type}"},
        "fields": {"href": f"{organization_url}/_apis/wit/fields"},
    }
