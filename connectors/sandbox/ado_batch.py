"""The sandbox's `{org}/_apis/wit/$batch` ("Work Item Batch Update"): several work item updates
in one request, each answered on its own.

The operation is not in specs/ado-wit-7.1.json; its shape is the documented one (specs/
API_NOTES.md, learn.microsoft.com "Work Item Batch Update" and the older "Work item batch
operations" page):
- `PATCH` (current reference) or `POST` (older documentation) with `api-version`, a JSON list
  (`application/json`) of sub-requests `{method, uri, headers, body}`, `uri` being the
  organization-relative URL the PATCH alone would use (`/_apis/wit/workitems/7?api-version=7.1`,
  a project segment allowed) and `headers` naming `application/json-patch+json`;
- the answer `{"count": n, "value": [{"code", "headers", "body"}]}` in request order, `body`
  the JSON *text* of the answer the PATCH alone would get (a work item, or the
  `WrappedException` of its error: a failed `test /rev` is a 412 for that item alone);
- "failed requests do not affect subsequent requests in the batch": every sub-request runs on
  its own, so a batch is not transactional.
Each sub-request is run by the sandbox's own PATCH route, so its checks, rules and revisions are
exactly those of a single update. At most 200 sub-requests (`BATCH_LIMIT`; the service's figure
is UNVERIFIED, the sandbox assumes the limit of its other many-item calls). A throttled batch
(429/503 with Retry-After) is refused as a whole, like any request, before a sub-request runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from email.message import Message
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from connectors.sandbox import ado_protocol as protocol
from connectors.sandbox.ado_requests import JSON, json_body
from connectors.sandbox.server import (
    HttpError,
    Route,
    SandboxRequest,
    SandboxResponse,
)

BATCH_LIMIT = 200
SUB_METHODS = frozenset({"PATCH"})
"""Only updates and creates are batched ("Currently only create/update requests are
supported"); the sandbox has no create route, so a create is answered as the route would be."""
_ANSWER_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


class BatchHost(Protocol):
    """What the batch needs of the sandbox: its organization and its routes."""

    organization: str
    routes: list[Route]


def batch_route_patterns(org_pattern: str) -> list[tuple[str, str, str]]:
    """(method, pattern, name) of the batch route, for `AzureDevOpsSandbox._add_routes`."""
    pattern = rf"{org_pattern}/_apis/wit/\$batch"
    return [(method, pattern, "/_apis/wit/$batch") for method in ("PATCH", "POST")]


def batch_update(host: BatchHost, request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
    """Run each sub-request through the PATCH route; one `{code, headers, body}` each."""
    if unquote(match["org"]).lower() != host.organization.lower():
        raise HttpError(404, protocol.route_not_found(request.path).body)
    protocol.require_api_version(request)
    sub_requests = json_body(request, (JSON,))
    if not isinstance(sub_requests, list) or not sub_requests:
        raise protocol.bad_argument("The batch request body must be a non-empty list of requests.")
    if len(sub_requests) > BATCH_LIMIT:
        raise protocol.bad_argument(
            f"The batch holds {len(sub_requests)} requests, more than the limit of {BATCH_LIMIT}."
        )
    answers = [_answer(host, request, sub) for sub in sub_requests]
    return SandboxResponse(200, {"count": len(answers), "value": answers})


def _answer(host: BatchHost, outer: SandboxRequest, sub: Any) -> dict[str, Any]:
    try:
        response = _run(host, outer, sub)
    except HttpError as error:
        response = error.response()
    body = response.encoded().decode("utf-8")
    return {"code": response.status, "headers": dict(_ANSWER_HEADERS), "body": body}


def _run(host: BatchHost, outer: SandboxRequest, sub: Any) -> SandboxResponse:
    if not isinstance(sub, Mapping) or not isinstance(sub.get("uri"), str):
        raise protocol.bad_argument("Each batch request needs a method, a uri, headers and body.")
    method = str(sub.get("method") or "").upper()
    request = _sub_request(host, outer, method, sub)
    if method not in SUB_METHODS:
        raise protocol.bad_argument(
            f"The batch request method '{method}' is not supported: only PATCH requests are."
        )
    for route in host.routes:
        if route.method == method and route.name.endswith("/_apis/wit/workitems/{id}"):
            found = route.pattern.match(request.path)
            if found:
                return route.handler(request, found)
    return protocol.route_not_found(request.path)


def _sub_request(
    host: BatchHost, outer: SandboxRequest, method: str, sub: Mapping[str, Any]
) -> SandboxRequest:
    """The sub-request as the PATCH route would receive it: the organization prefixed to its
    path, its own query and content type, the batch's credentials."""
    parts = urlsplit(str(sub["uri"]))
    path = parts.path if parts.path.startswith("/") else f"/{parts.path}"
    prefix = f"/{host.organization}".lower()
    if not (path.lower() == prefix or path.lower().startswith(prefix + "/")):
        path = f"/{host.organization}{path}"
    headers = Message()
    for name in ("Authorization", "Accept"):
        if outer.headers.get(name):
            headers[name] = outer.headers[name]
    sub_headers = sub.get("headers")
    if isinstance(sub_headers, Mapping):
        for name, value in sub_headers.items():
            headers[str(name)] = str(value)
    body = sub.get("body")
    encoded = b"" if body is None else json.dumps(body).encode("utf-8")
    query = parse_qs(parts.query, keep_blank_values=True)
    return SandboxRequest(method, path, query, headers, encoded)
