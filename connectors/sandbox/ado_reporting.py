"""The reporting work item revisions feed of the Azure DevOps sandbox.

`GET|POST {org}/{project}/_apis/wit/reporting/workitemrevisions` ("Reporting Work Item
Revisions", specs/ado-wit-7.1.json): every revision of the project's work items, in the order
the store recorded them (`ado_revision_log`), a batch at a time. The answer is a
`ReportingWorkItemRevisionsBatch` as in the official examples under
specs/ado-wit-7.1-examples/workItemRevisions/: `values` of `{id, rev, fields}`, a
`continuationToken` (`<watermark>;<last id>;<last rev>`, the shape of the examples' tokens; the
watermark is a position in the log), a `nextLink` carrying it with the request's other
parameters, and `isLastBatch` once the log is read to its end. Asked again with the token, the
feed answers only revisions recorded after it, so an idle project answers an empty last batch.

Parameters: `fields` (only those, else every field but the long text ones, which `$expand=
fields` adds), `types`, `continuationToken`, `startDateTime` (revisions changed after it; not
with a token), `includeDeleted`, `includeLatestOnly`, `includeIdentityRef` (identity fields as
objects, else as "Name <unique name>" strings, as in the examples), `$maxPageSize` (at most
`BATCH_SIZE`); `includeTagRef` and `includeDiscussionChangesOnly` are accepted and have no
effect. The POST variant takes the filter as a `ReportingWorkItemRevisionsFilter` body.
Under `Faults.endless_pages` the feed never ends: it answers the same batch again with a fresh
token and `isLastBatch: false`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import count
from typing import Any
from urllib.parse import quote, urlencode

from connectors.sandbox import ado_protocol as protocol
from connectors.sandbox.ado_fields import find_field
from connectors.sandbox.ado_render import format_date
from connectors.sandbox.ado_requests import JSON, JSON_PATCH, json_body
from connectors.sandbox.ado_workitems import WorkItemStore
from connectors.sandbox.server import SandboxRequest, SandboxResponse
from connectors.sandbox.wiql_eval import parse_date

BATCH_SIZE = 1000
"""Most revisions of one batch (the sandbox's choice, see specs/API_NOTES.md)."""
LONG_TEXT = frozenset({"html", "history"})
_ENDLESS = count(1)


@dataclass(frozen=True)
class FeedRequest:
    """What one request asks of the feed."""

    fields: tuple[str, ...] | None
    types: frozenset[str] | None
    position: int
    since: datetime | None
    include_deleted: bool
    latest_only: bool
    identity_refs: bool
    long_text: bool
    page_size: int


def parse_get(request: SandboxRequest, log_size: int, batch_size: int) -> FeedRequest:
    fields, types = request.param("fields"), request.param("types")
    return _feed_request(
        request,
        fields.split(",") if fields else None,
        types.split(",") if types else None,
        {
            name: _flag(request.param(name), name)
            for name in ("includeDeleted", "includeLatestOnly", "includeIdentityRef")
        },
        log_size,
        _page_size(request.param("$maxPageSize"), batch_size),
    )


def parse_post(request: SandboxRequest, log_size: int, batch_size: int) -> FeedRequest:
    body = json_body(request, (JSON, JSON_PATCH))
    if not isinstance(body, dict):
        raise protocol.bad_argument("The request body must be a ReportingWorkItemRevisionsFilter.")
    fields, types = body.get("fields"), body.get("types")
    for name, value in (("fields", fields), ("types", types)):
        if value is not None and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            raise protocol.bad_argument(f"The {name} of the filter must be a list of strings.")
    flags = {}
    for name in ("includeDeleted", "includeLatestOnly", "includeIdentityRef"):
        value = body.get(name)
        if value is not None and not isinstance(value, bool):
            raise protocol.bad_argument(f"The value '{value}' is not valid for {name}.")
        flags[name] = bool(value)
    return _feed_request(request, fields, types, flags, log_size, batch_size)


def _feed_request(
    request: SandboxRequest,
    fields: list[str] | None,
    types: list[str] | None,
    flags: Mapping[str, bool],
    log_size: int,
    page_size: int,
) -> FeedRequest:
    references = None
    if fields:
        references = []
        for name in fields:
            field = find_field(name)
            if field is None:
                raise protocol.field_not_found(name.strip())
            references.append(field.reference_name)
    token, start = request.param("continuationToken"), request.param("startDateTime")
    if token and start:
        raise protocol.bad_argument(
            "The startDateTime parameter cannot be used together with a continuationToken."
        )
    expand = (request.param("$expand") or "none").lower()
    if expand not in ("none", "fields"):
        raise protocol.bad_argument(f"The $expand value '{expand}' is not one of None, Fields.")
    return FeedRequest(
        fields=tuple(references) if references is not None else None,
        types=frozenset(t.strip().lower() for t in types) if types else None,
        position=_position(token, log_size),
        since=_since(start),
        include_deleted=flags["includeDeleted"],
        latest_only=flags["includeLatestOnly"],
        identity_refs=flags["includeIdentityRef"],
        long_text=expand == "fields",
        page_size=page_size,
    )


def answer(
    store: WorkItemStore,
    feed: FeedRequest,
    link_base: str,
    link_params: Mapping[str, str],
    *,
    endless: bool = False,
) -> SandboxResponse:
    """One batch from `feed.position`; `link_base` and `link_params` make the `nextLink`."""
    log = store.revisions
    values: list[dict[str, Any]] = []
    position, last_id, last_rev = feed.position, 0, 0
    while position < len(log) and len(values) < feed.page_size:
        work_item_id, rev = log.entry(position)
        position += 1
        body = _revision_json(store, feed, work_item_id, rev)
        if body is not None:
            values.append(body)
            last_id, last_rev = work_item_id, rev
    if last_id == 0 and position > 0:
        last_id, last_rev = log.entry(position - 1)
    token = f"{position};{last_id};{last_rev}"
    last = position >= len(log)
    if endless:
        position = feed.position
        token, last = f"{position};{last_id};{next(_ENDLESS)}", False
    next_link = f"{link_base}?{urlencode({'continuationToken': token, **link_params})}"
    batch = {
        "values": values,
        "nextLink": next_link,
        "continuationToken": token,
        "isLastBatch": last,
    }
    return SandboxResponse(200, batch)


def link_base(organization_url: str, project: str) -> str:
    return f"{organization_url}/{quote(project)}/_apis/wit/reporting/workItemRevisions"


def _revision_json(
    store: WorkItemStore, feed: FeedRequest, work_item_id: int, rev: int
) -> dict[str, Any] | None:
    item = store.items.get(work_item_id)
    if item is None and feed.include_deleted:
        item = store.deleted.get(work_item_id)
    if item is None or (feed.latest_only and rev != item.rev):
        return None
    values = item.revision(rev)
    if values is None:
        return None
    if feed.types is not None and str(values["System.WorkItemType"]).lower() not in feed.types:
        return None
    if feed.since is not None and values["System.ChangedDate"] <= feed.since:
        return None
    return {"id": item.id, "rev": rev, "fields": _fields(values, feed)}


def _fields(values: Mapping[str, Any], feed: FeedRequest) -> dict[str, Any]:
    names: Iterable[str] = values if feed.fields is None else feed.fields
    rendered: dict[str, Any] = {}
    for name in names:
        value = values.get(name)
        if value is None:
            continue
        field = find_field(name)
        long_text = field is not None and field.type in LONG_TEXT
        if feed.fields is None and long_text and not feed.long_text:
            continue
        if isinstance(value, datetime):
            value = format_date(value)
        elif isinstance(value, Mapping) and not feed.identity_refs:
            value = f"{value.get('displayName')} <{value.get('uniqueName')}>"
        rendered[name] = value
    return rendered


def _position(token: str | None, log_size: int) -> int:
    if not token:
        return 0
    watermark = token.split(";", 1)[0].strip()
    if not watermark.isdigit() or int(watermark) > log_size:
        raise protocol.bad_argument(f"The continuation token '{token}' is not valid.")
    return int(watermark)


def _since(raw: str | None) -> datetime | None:
    if not raw:
        return None
    moment = parse_date(raw)[0]
    if moment is None:
        raise protocol.bad_argument(f"The startDateTime value '{raw}' is not a valid date.")
    return moment


def _flag(raw: str | None, name: str) -> bool:
    if raw is None or raw == "":
        return False
    if raw.lower() not in ("true", "false"):
        raise protocol.bad_argument(f"The value '{raw}' is not valid for {name}.")
    return raw.lower() == "true"


def _page_size(raw: str | None, batch_size: int) -> int:
    if raw is None or raw == "":
        return batch_size
    try:
        size = int(raw)
    except ValueError as error:
        raise protocol.bad_argument(f"The value '{raw}' is not valid for $maxPageSize.") from error
    if size < 1:
        raise protocol.bad_argument(f"The value '{raw}' is not valid for $maxPageSize.")
    return min(size, batch_size)
