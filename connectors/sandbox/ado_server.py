"""An in-process Azure DevOps Services organization (Work Item Tracking 7.1) for tests and demos.

    with AzureDevOpsSandbox(portfolio.azure_devops) as ado:
        creds = BasicAuthentication("", ado.pat)
        connection = Connection(base_url=ado.organization_url, creds=creds)
        wit = connection.clients_v7_1.get_work_item_tracking_client()

It answers the resource-location discovery the unmodified `azure-devops` library makes
(`OPTIONS {org}/_apis`, `GET {org}/_apis/ResourceAreas`), WIQL (ids only, 20,000 cap),
`workitemsbatch` and `workitems?ids=` (200 cap), single reads, an item's revisions
(`workItems/{id}/revisions`), JSON Patch updates with optimistic concurrency (`test /rev` ->
412), alone or many in one `$batch` (`ado_batch`), the reporting revisions feed
(`ado_reporting`), fields, relation types and type states,
under `/{organization}` and `/{organization}/{project}` (paths ignore case, as the service's do).
Shapes are those of `specs/ado-wit-7.1.json`; conventions every route shares (errors,
api-version, PAT, rate limits) live in `ado_protocol`, request parsing in `ado_requests`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import unquote

from connectors.sandbox import ado_batch
from connectors.sandbox import ado_discovery as discovery
from connectors.sandbox import ado_protocol as protocol
from connectors.sandbox import ado_reporting as reporting
from connectors.sandbox.ado_fields import (
    all_fields,
    all_relation_types,
    field_json,
    field_reference_json,
    find_field,
    find_relation_type,
    relation_type_json,
    state_json,
)
from connectors.sandbox.ado_protocol import RateLimitDelay
from connectors.sandbox.ado_render import AUTOMATION, format_date, work_item_json
from connectors.sandbox.ado_requests import (
    JSON,
    JSON_PATCH,
    ReadOptions,
    bool_param,
    collection,
    id_list,
    int_param,
    json_body,
    query_read_options,
)
from connectors.sandbox.ado_workitems import StoredItem, WorkItemStore, WriteRecord
from connectors.sandbox.portfolio import SeedItem
from connectors.sandbox.raw_json import RawJson, RenderCache, dumps
from connectors.sandbox.server import (
    NO_FAULTS,
    Faults,
    Handler,
    HttpError,
    SandboxRequest,
    SandboxResponse,
    SandboxServer,
)
from connectors.sandbox.wiql import WiqlError, parse
from connectors.sandbox.wiql_eval import QueryContext, compile_query

QUERY_RESULT_LIMIT = 20_000
ID_WINDOW = re.compile(r"\s+AND\s+\[System\.Id\]\s*(?:>|<=)\s*\d+", re.IGNORECASE)
"""The id-window conditions of a paged scope query, which an endless WIQL query ignores."""
PAGE_SIZE_LIMIT = 200
REVISIONS_PAGE_LIMIT = 200
"""Most revisions one `Revisions_List` answer holds (the spec gives no default `$top`; 200 as
for reads of several items, an assumption of the sandbox)."""

_ORG = r"/(?P<org>[^/]+)"
_PROJECT = r"(?:/(?P<project>(?!_apis(?:/|$))[^/]+))"
_TEAM = r"(?:/(?P<team>(?!_apis(?:/|$))[^/]+))"
_WIT = f"{_ORG}{_PROJECT}?/_apis/wit"


class AzureDevOpsSandbox(SandboxServer):
    """Serves `items` (Azure DevOps `SeedItem`s: decimal keys, area paths as `project`)."""

    def __init__(
        self,
        items: Iterable[SeedItem] = (),
        *,
        organization: str = "sandbox",
        project: str = "Portfolio",
        faults: Faults = NO_FAULTS,
        pat: str = "sandbox-pat",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(faults)
        self.organization = organization
        self.project = project
        self.pat = pat
        self.delay: RateLimitDelay | None = None
        self.request_log: list[SandboxRequest] | None = None
        """Set to a list to record every request (to check what a client sends)."""
        self.revision_batch_size = reporting.BATCH_SIZE
        """Most revisions of one batch of the reporting revisions feed."""
        self.store = WorkItemStore(project, clock or (lambda: datetime.now(UTC)))
        self.store.load(items)
        self.render_cache = RenderCache()
        self._add_routes()

    # -- what tests and demos use --------------------------------------------------------------
    @property
    def organization_url(self) -> str:
        return f"{self.url}/{self.organization}"

    @property
    def basic_auth(self) -> tuple[str, str]:
        """(user, password) for `requests`: an empty user name and the PAT."""
        return "", self.pat

    @property
    def writes(self) -> list[WriteRecord]:
        return self.store.writes

    @property
    def change_on_read(self) -> set[int | str]:
        """Ids (int or str) that a human edits right after a client next reads them."""
        return self.store.change_on_read

    def work_item(self, work_item_id: int) -> dict[str, Any]:
        """The stored item as the API returns it with `$expand=all`."""
        with self.lock:
            item = self._existing(work_item_id)
            body = self.store.render(item, self._base_for_urls(), relations=True, links=True)
        assert body is not None
        return body

    def touch(self, work_item_id: int, **fields: Any) -> dict[str, Any]:
        """A human edit, fields by reference or display name: `touch(7, **{"Effort": 5})`."""
        with self.lock:
            self.store.touch(self._existing(work_item_id).id, fields)
        return self.work_item(work_item_id)

    def delete(self, work_item_id: int) -> None:
        with self.lock:
            self.store.delete(int(work_item_id))

    def set_delay(self, delay: RateLimitDelay | None) -> None:
        self.delay = delay

    def _existing(self, work_item_id: int | str) -> StoredItem:
        item = self.store.items.get(int(work_item_id))
        if item is None:
            raise KeyError(f"work item {work_item_id} does not exist in the sandbox")
        return item

    def _base_for_urls(self) -> str:
        return self.organization_url if self._httpd is not None else f"/{self.organization}"

    # -- server hooks --------------------------------------------------------------------------
    def authenticate(self, request: SandboxRequest) -> None:
        protocol.check_pat(request, self.pat, realm=self.url)

    def not_found(self, request: SandboxRequest) -> SandboxResponse:
        return protocol.route_not_found(request.path)

    def throttled_response(self, status: int) -> SandboxResponse:
        if status == 429:
            return protocol.blocked_response(self.faults.retry_after_seconds)
        return protocol.unavailable_response(self.faults.retry_after_seconds)

    def internal_error(self, request: SandboxRequest, error: Exception) -> SandboxResponse:
        message = f"Internal error in the sandbox: {error!r}"
        body = protocol.wrapped_exception(message, "InternalServerErrorException", "framework")
        return SandboxResponse(500, body)

    def dispatch(self, request: SandboxRequest) -> tuple[SandboxResponse, str]:
        if self.request_log is not None:
            self.request_log.append(request)
        response, route = super().dispatch(request)
        self._maybe_delay(request, response)
        return response, route

    def _maybe_delay(self, request: SandboxRequest, response: SandboxResponse) -> None:
        delay = self.delay
        if (
            delay is not None
            and response.status < 300
            and delay.applies_to(request.path)
            and self.draw() < delay.rate
        ):
            time.sleep(delay.seconds)
            response.headers.update(protocol.rate_limit_headers(delay.seconds, delay=delay.seconds))

    # -- routes --------------------------------------------------------------------------------
    def _add_routes(self) -> None:
        routes: list[tuple[str, str, Handler, str]] = [
            ("OPTIONS", rf"{_ORG}/_apis(?:/(?P<area>[^/]+))?/?", self._options, "/_apis"),
            (
                "GET",
                rf"{_ORG}/_apis/connectionData",
                self._connection_data,
                "/_apis/connectionData",
            ),
            ("GET", rf"{_ORG}/_apis/ResourceAreas(?:/[^/]+)?", self._areas, "/_apis/ResourceAreas"),
            ("POST", rf"{_ORG}{_PROJECT}?{_TEAM}?/_apis/wit/wiql", self._wiql, "/_apis/wit/wiql"),
            ("POST", rf"{_WIT}/workitemsbatch", self._batch, "/_apis/wit/workitemsbatch"),
            ("GET", rf"{_WIT}/workitems", self._list, "/_apis/wit/workitems"),
            ("GET", rf"{_WIT}/workitems/(?P<id>\d+)", self._get, "/_apis/wit/workitems/{id}"),
            ("PATCH", rf"{_WIT}/workitems/(?P<id>\d+)", self._patch, "/_apis/wit/workitems/{id}"),
            (
                "GET",
                rf"{_WIT}/workitems/(?P<id>\d+)/revisions",
                self._item_revisions,
                "/_apis/wit/workitems/{id}/revisions",
            ),
            (
                "GET",
                rf"{_WIT}/reporting/workitemrevisions",
                self._revisions,
                "/_apis/wit/reporting/workitemrevisions",
            ),
            (
                "POST",
                rf"{_WIT}/reporting/workitemrevisions",
                self._revisions,
                "/_apis/wit/reporting/workitemrevisions",
            ),
            ("GET", rf"{_WIT}/fields", self._fields, "/_apis/wit/fields"),
            ("GET", rf"{_WIT}/fields/(?P<field>[^/]+)", self._field, "/_apis/wit/fields/{field}"),
            (
                "GET",
                rf"{_ORG}/_apis/wit/workitemrelationtypes(?:/(?P<relation>[^/]+))?",
                self._relation_types,
                "/_apis/wit/workitemrelationtypes",
            ),
            (
                "GET",
                rf"{_ORG}{_PROJECT}/_apis/wit/workitemtypes/(?P<type>[^/]+)/states",
                self._states,
                "/_apis/wit/workitemtypes/{type}/states",
            ),
        ]
        for method, pattern, handler, name in routes:
            self.add_route(method, f"(?i:{pattern})", handler, f"{method} {name}")
        batch_update = partial(ado_batch.batch_update, self)
        for method, pattern, name in ado_batch.batch_route_patterns(_ORG):
            self.add_route(method, f"(?i:{pattern})", batch_update, f"{method} {name}")

    def _scope(
        self, request: SandboxRequest, match: re.Match[str], *, versioned: bool = True
    ) -> str | None:
        """Checks organization, project and api-version; the project named in the URL or None."""
        if unquote(match["org"]).lower() != self.organization.lower():
            raise HttpError(404, protocol.route_not_found(request.path).body)
        project = match.groupdict().get("project")
        if project is not None and unquote(project).lower() != self.project.lower():
            raise protocol.project_not_found(unquote(project))
        if versioned:
            protocol.require_api_version(request)
        return self.project if project is not None else None

    # -- discovery -----------------------------------------------------------------------------
    def _options(self, request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
        self._scope(request, match, versioned=False)
        return collection(discovery.resource_locations(match["area"]))

    def _connection_data(self, request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
        self._scope(request, match, versioned=False)
        return SandboxResponse(200, discovery.connection_data(AUTOMATION))

    def _areas(self, request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
        self._scope(request, match)
        url = f"{self.organization_url}/"
        return collection([{"id": discovery.WIT_AREA_ID, "name": "wit", "locationUrl": url}])

    # -- WIQL ----------------------------------------------------------------------------------
    def _wiql(self, request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
        project = self._scope(request, match)
        body = json_body(request, (JSON, JSON_PATCH))
        text = body.get("query") if isinstance(body, dict) else None
        if self.hostile_paging(request) and isinstance(text, str):
            text = ID_WINDOW.sub("", text)  # `Faults.endless_pages`: the window is ignored
        time_precision = bool_param(request, "timePrecision")
        top = int_param(request, "$top")
        with self.lock:
            today = self.store.clock().astimezone(UTC).date()
            areas = frozenset(self.store.area_paths)
            try:
                context = QueryContext(project, today, time_precision, areas)
                compiled = compile_query(parse(str(text or "")), context)
            except WiqlError as error:
                raise protocol.invalid_query(str(error)) from error
            ids = [] if self.hostile_empty(request) else self.store.query(compiled)
            as_of = self.store.clock()
        if top is not None:
            ids = ids[: max(top, 0)]
            if self.hostile_paging(request) and ids:
                ids = (ids * (top // len(ids) + 1))[:top]  # answers ids again, up to `$top`
        if len(ids) > QUERY_RESULT_LIMIT:
            raise protocol.query_too_large(QUERY_RESULT_LIMIT)
        org = self.organization_url
        result = {
            "queryType": "flat",
            "queryResultType": "workItem",
            "asOf": format_date(as_of),
            "columns": [field_reference_json(field, org) for field in compiled.columns],
            "sortColumns": [
                {"field": field_reference_json(field, org), "descending": descending}
                for field, descending in compiled.order
            ],
            "workItems": [{"id": i, "url": f"{org}/_apis/wit/workItems/{i}"} for i in ids],
        }
        return SandboxResponse(200, result)

    # -- reading work items --------------------------------------------------------------------
    def _batch(self, request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
        self._scope(request, match)
        body = json_body(request, (JSON, JSON_PATCH))
        if not isinstance(body, dict):
            raise protocol.bad_argument("The request body must be a WorkItemBatchGetRequest.")
        fields = body.get("fields")
        options = ReadOptions.parse(
            fields if isinstance(fields, list) else None, body.get("$expand"), body.get("asOf")
        )
        return self._read_many(id_list(body.get("ids")), options, body.get("errorPolicy"))

    def _list(self, request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
        self._scope(request, match)
        ids = id_list(request.param("ids") or [])
        options = query_read_options(request)
        return self._read_many(ids, options, request.param("errorPolicy"))

    def _read_many(self, ids: list[int], options: ReadOptions, policy: Any) -> SandboxResponse:
        """Items in request order; a missing id fails the call, or is null with `omit`."""
        unique = list(dict.fromkeys(ids))
        if len(unique) > PAGE_SIZE_LIMIT:
            raise protocol.page_too_large(len(unique), PAGE_SIZE_LIMIT)
        error_policy = str(policy or "fail").lower()
        if error_policy not in ("fail", "omit"):
            raise protocol.bad_argument(f"The errorPolicy '{policy}' is not one of Fail, Omit.")
        value: list[RawJson | None] = []
        with self.lock:
            for work_item_id in unique:
                item = self.store.items.get(work_item_id)
                body = None if item is None else self._render(item, options)
                if body is None and error_policy == "fail":
                    raise protocol.work_item_not_found(work_item_id)
                value.append(body)
            self.store.after_read(i for i, body in zip(unique, value, strict=True) if body)
        return collection(value)

    def _get(self, request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
        self._scope(request, match)
        options = query_read_options(request)
        with self.lock:
            item = self.store.get(int(match["id"]))
            body = self._render(item, options)
            if body is None:
                raise protocol.work_item_not_found(item.id)
            self.store.after_read([item.id])
        return SandboxResponse(200, body)

    def _item_revisions(self, request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
        """`Revisions_List`: the item's revisions, oldest first, as full `WorkItem`s, paged by
        `$skip`/`$top` (at most `REVISIONS_PAGE_LIMIT`); `$expand` as for a single read."""
        self._scope(request, match)
        options = ReadOptions.parse(None, request.param("$expand"), None)
        skip = max(int_param(request, "$skip") or 0, 0)
        top = int_param(request, "$top")
        size = REVISIONS_PAGE_LIMIT if top is None else min(max(top, 0), REVISIONS_PAGE_LIMIT)
        org = self.organization_url
        value: list[dict[str, Any]] = []
        with self.lock:
            item = self.store.get(int(match["id"]))
            for rev in range(skip + 1, min(skip + size, item.rev) + 1):
                values = item.revision(rev)
                if values is None:
                    continue
                state = item.as_of(values["System.ChangedDate"]) if options.relations else None
                body = work_item_json(
                    item.id,
                    values,
                    state[1] if state is not None else (),
                    org,
                    with_relations=options.relations,
                    with_links=options.links,
                )
                body["url"] = f"{body['url']}/revisions/{rev}"
                value.append(body)
        return collection(value)

    def _render(self, item: StoredItem, options: ReadOptions) -> RawJson | None:
        """The item's JSON, encoded once per read shape while nothing changes (`raw_json`);
        reads `asOf` a past revision are rare and rendered each time."""
        org, fields = self.organization_url, options.fields
        shape: dict[str, Any] = {"relations": options.relations, "links": options.links}
        if options.as_of is not None:
            body = self.store.render(item, org, fields=fields, as_of=options.as_of, **shape)
            return None if body is None else RawJson(dumps(body))
        key = (item.id, org, None if fields is None else tuple(fields), *shape.values())
        return self.render_cache.get(
            self.store.version,
            key,
            lambda: self.store.render(item, org, fields=fields, **shape) or {},
        )

    # -- writing -------------------------------------------------------------------------------
    def _patch(self, request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
        """JSON Patch; `suppressNotifications` is accepted (there is nobody to notify)."""
        self._scope(request, match)
        document = json_body(request, (JSON_PATCH,))
        validate_only = bool_param(request, "validateOnly")
        bypass_rules = bool_param(request, "bypassRules")
        bool_param(request, "suppressNotifications")
        with self.lock:
            item = self.store.patch(
                int(match["id"]),
                document,
                validate_only=validate_only,
                bypass_rules=bypass_rules,
                by=AUTOMATION,
            )
            body = self.store.render(item, self.organization_url, relations=True, links=True)
        return SandboxResponse(200, body)

    # -- reporting -----------------------------------------------------------------------------
    def _revisions(self, request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
        """A batch of the revisions feed; `nextLink` repeats a GET's parameters but the token."""
        self._scope(request, match)
        kept = ("continuationToken", "startDateTime")
        if request.method == "POST":
            params = {"api-version": protocol.requested_api_version(request) or "7.1"}
        else:
            params = {name: v[-1] for name, v in request.query.items() if name not in kept}
        with self.lock:
            parse = reporting.parse_post if request.method == "POST" else reporting.parse_get
            feed = parse(request, len(self.store.revisions), self.revision_batch_size)
            base = reporting.link_base(self.organization_url, self.project)
            endless = self.hostile_paging(request)
            return reporting.answer(self.store, feed, base, params, endless=endless)

    # -- metadata ------------------------------------------------------------------------------
    def _fields(self, request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
        self._scope(request, match)
        return collection([field_json(field, self.organization_url) for field in all_fields()])

    def _field(self, request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
        self._scope(request, match)
        name = unquote(match["field"])
        field = find_field(name)
        if field is None:
            raise protocol.field_not_found(name)
        return SandboxResponse(200, field_json(field, self.organization_url))

    def _relation_types(self, request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
        self._scope(request, match)
        org = self.organization_url
        if not match["relation"]:
            return collection([relation_type_json(r, org) for r in all_relation_types()])
        name = unquote(match["relation"])
        relation = find_relation_type(name)
        if relation is None:
            message = f"The relation type '{name}' does not exist."
            raise protocol.service_error(404, message, "WitResourceNotFoundException")
        return SandboxResponse(200, relation_type_json(relation, org))

    def _states(self, request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
        self._scope(request, match)
        name = unquote(match["type"])
        with self.lock:
            states = self.store.states_of(name)
        if states is None:
            message = f"Work item type '{name}' does not exist."
            raise protocol.service_error(404, message, "WorkItemTypeNotFoundException")
        return collection([state_json(state, category) for state, category in states])


__all__ = ["AzureDevOpsSandbox", "RateLimitDelay"]
