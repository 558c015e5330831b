"""The HTTP routes of the Jira sandbox: request parsing and response shapes per endpoint.

Paths are registered once per API version so `counts` tell v2 from v3 traffic
("GET /rest/api/2/issue/{key}"). `latest` is served as v2.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from connectors.sandbox.jira_changelog import bulk_changelogs, statuses
from connectors.sandbox.jira_edit import EditError, apply_edit, on_screen, plan_edit
from connectors.sandbox.jira_permissions import (
    RANK_FORBIDDEN,
    edit_operations,
    permissions_json,
    requested_permissions,
)
from connectors.sandbox.jira_rank import rank_issues
from connectors.sandbox.jira_render import (
    encoded_issue,
    format_time,
    link_type_json,
    parse_field_list,
    project_json,
    render_issue,
    select_fields,
)
from connectors.sandbox.jira_search import bad_request, reject_unknown
from connectors.sandbox.server import HttpError, SandboxRequest, SandboxResponse

if TYPE_CHECKING:
    from connectors.sandbox.jira_server import JiraSandbox

ISSUE_NOT_FOUND = "Issue does not exist or you do not have permission to see it."
SEARCH_REMOVED = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at "
    "https://developer.atlassian.com/changelog/#CHANGE-2046"
)
CLOUD_VERSION = ("1001.0.0-SNAPSHOT", [1001, 0, 0], 100282)
DATACENTER_VERSION = ("9.12.15", [9, 12, 15], 9120015)
BUILD_DATE = "2025-01-15T00:00:00.000+0000"
SEARCH_POST_FIELDS = {
    "jql", "nextPageToken", "maxResults", "fields", "expand", "properties", "fieldsByKeys",
    "reconcileIssues", "failFast",
}  # fmt: skip
DC_SEARCH_POST_FIELDS = {"jql", "startAt", "maxResults", "validateQuery", "fields", "expand"}


def json_response(body: Any, status: int = 200) -> SandboxResponse:
    return SandboxResponse(status, body)


def _query_params(request: SandboxRequest) -> dict[str, Any]:
    """Single values as strings; `fields`, `expand`, `properties`, `reconcileIssues` as lists."""
    params: dict[str, Any] = {}
    for name, values in request.query.items():
        multi = name in ("fields", "properties", "reconcileIssues")
        params[name] = values if multi else values[-1]
    return params


class JiraRoutes:
    def __init__(self, sandbox: JiraSandbox) -> None:
        self.sandbox = sandbox

    def register(self) -> None:
        cloud = self.sandbox.flavour == "cloud"
        versions = ("2", "3", "latest") if cloud else ("2", "latest")
        for version in versions:
            base = f"/rest/api/{version}"
            self._add("GET", base, "/serverInfo", self.server_info)
            self._add("GET", base, "/myself", self.myself)
            self._add("GET", base, "/field", self.fields)
            self._add("GET", base, "/issueLinkType", self.link_types)
            self._add("GET", base, "/project", self.projects)
            self._add("GET", base, "/project/(?P<key>[^/]+)", self.project, "/project/{key}")
            self._add("GET", base, "/mypermissions", self.my_permissions)
            self._add("GET", base, "/status", self.statuses)
            self._add("GET", base, "/issue/(?P<key>[^/]+)", self.get_issue, "/issue/{key}")
            self._add(
                "GET", base, "/issue/(?P<key>[^/]+)/editmeta", self.edit_meta,
                "/issue/{key}/editmeta",
            )  # fmt: skip
            self._add("PUT", base, "/issue/(?P<key>[^/]+)", self.edit_issue, "/issue/{key}")
            if cloud:
                self._add("GET", base, "/search/jql", self.search_jql)
                self._add("POST", base, "/search/jql", self.search_jql)
                self._add("POST", base, "/search/approximate-count", self.approximate_count)
                self._add("POST", base, "/issue/bulkfetch", self.bulk_fetch)
                self._add("POST", base, "/changelog/bulkfetch", self.bulk_changelogs)
                self._add("GET", base, "/search", self.search_removed)
                self._add("POST", base, "/search", self.search_removed)
            else:
                self._add("GET", base, "/search", self.search_datacenter)
                self._add("POST", base, "/search", self.search_datacenter)
        self.sandbox.add_route(
            "PUT", "/rest/agile/1.0/issue/rank", self.rank, "PUT /rest/agile/1.0/issue/rank"
        )

    def _add(
        self,
        method: str,
        base: str,
        path: str,
        handler: Callable[[SandboxRequest, re.Match[str], str], SandboxResponse],
        shown: str | None = None,
    ) -> None:
        version = base.rsplit("/", 1)[-1]

        def route(request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
            return handler(request, match, version)

        name = f"{method} {base}{shown or path}"
        self.sandbox.add_route(method, f"{re.escape(base)}{path}", route, name)

    # -- site ------------------------------------------------------------------------------
    def server_info(self, request: SandboxRequest, match: re.Match[str], v: str) -> SandboxResponse:
        sandbox = self.sandbox
        cloud = sandbox.flavour == "cloud"
        version, numbers, build = CLOUD_VERSION if cloud else DATACENTER_VERSION
        body = {
            "baseUrl": sandbox.url,
            "version": version,
            "versionNumbers": numbers,
            "deploymentType": sandbox.deployment_type,
            "buildNumber": build,
            "buildDate": BUILD_DATE,
            "serverTime": format_time(sandbox.store.now_millis(), sandbox.time_zone),
            "scmInfo": "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c",
            "serverTitle": "Jira",
            "serverTimeZone": "Etc/UTC",
        }
        return json_response(body)

    def myself(self, request: SandboxRequest, match: re.Match[str], v: str) -> SandboxResponse:
        sandbox = self.sandbox
        api = sandbox.render_context(v).api
        user = sandbox.user
        email = user if "@" in user else f"{user}@example.com"
        body: dict[str, Any] = {
            "emailAddress": email,
            "displayName": "Sandbox Automation",
            "active": True,
            "timeZone": str(sandbox.time_zone),
            "locale": "en_US",
            "expand": "groups,applicationRoles",
            "groups": {"size": 1, "items": []},
            "applicationRoles": {"size": 1, "items": []},
        }
        if sandbox.flavour == "cloud":
            account_id = f"5b10ac8d82e05b22cc7d{zlib.crc32(user.encode()) % 10**4:04d}"
            body.update(self=f"{api}/user?accountId={account_id}", accountId=account_id)
            body["accountType"] = "atlassian"
        else:
            body.update(self=f"{api}/user?username={user}", key="JIRAUSER10000", name=user)
        return json_response(body)

    def fields(self, request: SandboxRequest, match: re.Match[str], v: str) -> SandboxResponse:
        return json_response([definition.details() for definition in self.sandbox.fields])

    def link_types(self, request: SandboxRequest, match: re.Match[str], v: str) -> SandboxResponse:
        context = self.sandbox.render_context(v)
        with self.sandbox.lock:
            types = [link_type_json(context, name) for name in self.sandbox.store.link_types]
        return json_response({"issueLinkTypes": types})

    def projects(self, request: SandboxRequest, match: re.Match[str], v: str) -> SandboxResponse:
        context = self.sandbox.render_context(v)
        with self.sandbox.lock:
            keys = sorted(self.sandbox.store.projects)
            return json_response([self._project(context, key) for key in keys])

    def project(self, request: SandboxRequest, match: re.Match[str], v: str) -> SandboxResponse:
        context = self.sandbox.render_context(v)
        with self.sandbox.lock:
            return json_response(self._project(context, self._project_key(match["key"])))

    def _project_key(self, wanted: str) -> str:
        """The key of the project `wanted` names by key or id; 404 as Jira answers it."""
        for info in self.sandbox.store.projects.values():
            if wanted.upper() == info.key or wanted == str(info.id):
                return info.key
        message = f"No project could be found with key '{wanted}'."
        raise HttpError(404, {"errorMessages": [message], "errors": {}})

    @staticmethod
    def _project(context: Any, key: str) -> dict[str, Any]:
        body = project_json(context, key)
        body.update(expand="description,lead,issueTypes,url,projectKeys", style="classic")
        body["isPrivate"] = False
        return body

    # -- issues ----------------------------------------------------------------------------
    def get_issue(self, request: SandboxRequest, match: re.Match[str], v: str) -> SandboxResponse:
        sandbox = self.sandbox
        context = sandbox.render_context(v)
        params = _query_params(request)
        selection = select_fields(parse_field_list(params.get("fields")), "*all", sandbox.fields)
        expand = set(parse_field_list(params.get("expand")))
        with sandbox.lock:
            issue = sandbox.store.find(match["key"])
            if issue is None:
                raise HttpError(404, {"errorMessages": [ISSUE_NOT_FOUND], "errors": {}})
            body = encoded_issue(context, issue, selection, expand)
            if selection.fields:
                sandbox.after_read([issue])
        return json_response(body)

    def edit_issue(self, request: SandboxRequest, match: re.Match[str], v: str) -> SandboxResponse:
        sandbox = self.sandbox
        body = request.json()
        notify_param = (request.param("notifyUsers") or "true").lower()
        notified = not (notify_param == "false" and sandbox.admin)
        with sandbox.lock:
            issue = sandbox.store.find(match["key"])
            if issue is None:
                raise HttpError(404, {"errorMessages": [ISSUE_NOT_FOUND], "errors": {}})
            context = sandbox.edit_context(v)
            try:
                changes = plan_edit(context, issue, body)
            except EditError as error:
                raise HttpError(400, error.body()) from error
            sandbox.writes.extend(apply_edit(context, issue, changes, notified))
            if (request.param("returnIssue") or "").lower() == "true":
                selection = select_fields([], "*all", sandbox.fields)
                expand = set(parse_field_list(request.param("expand")))
                rendered = render_issue(sandbox.render_context(v), issue, selection, expand)
                return json_response(rendered)
        return SandboxResponse(204)

    def edit_meta(self, request: SandboxRequest, match: re.Match[str], v: str) -> SandboxResponse:
        """The fields editIssue would accept on this issue, as the edit screen shows them."""
        sandbox = self.sandbox
        with sandbox.lock:
            issue = sandbox.store.find(match["key"])
            if issue is None:
                raise HttpError(404, {"errorMessages": [ISSUE_NOT_FOUND], "errors": {}})
            context = sandbox.edit_context(v)
            fields = {
                d.id: {
                    "required": d.kind == "summary",
                    "schema": d.schema,
                    "name": d.name,
                    "key": d.id,
                    "operations": edit_operations(d.kind),
                }
                for d in sandbox.fields
                if d.schema is not None and on_screen(context, issue, d)
            }
        return json_response({"fields": fields})

    def my_permissions(
        self, request: SandboxRequest, match: re.Match[str], v: str
    ) -> SandboxResponse:
        """Permissions in the global, project or issue context (all the same in the sandbox,
        but an unknown project or issue is a 404 as in Jira)."""
        sandbox = self.sandbox
        keys = requested_permissions(
            request.param("permissions"), required=sandbox.flavour == "cloud"
        )
        issue_ref = request.param("issueKey") or request.param("issueId")
        project_ref = request.param("projectKey") or request.param("projectId")
        with sandbox.lock:
            if issue_ref and sandbox.store.find(issue_ref) is None:
                raise HttpError(404, {"errorMessages": [ISSUE_NOT_FOUND], "errors": {}})
            if project_ref:
                self._project_key(project_ref)
        return json_response(permissions_json(keys, sandbox.has_permission))

    # -- search ----------------------------------------------------------------------------
    def _search_params(self, request: SandboxRequest, allowed: set[str]) -> dict[str, Any]:
        if request.method == "GET":
            return _query_params(request)
        body = request.json()
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object.")
        reject_unknown(body, allowed, "SearchRequestBean")
        return {name: value for name, value in body.items() if value is not None}

    def search_jql(self, request: SandboxRequest, match: re.Match[str], v: str) -> SandboxResponse:
        params = self._search_params(request, SEARCH_POST_FIELDS)
        with self.sandbox.lock:
            context = self.sandbox.render_context(v)
            body = self.sandbox.search.cloud_search(
                context,
                params,
                endless=self.sandbox.hostile_paging(request),
                empty=self.sandbox.hostile_empty(request),
            )
        return json_response(body)

    def search_datacenter(
        self, request: SandboxRequest, match: re.Match[str], v: str
    ) -> SandboxResponse:
        params = self._search_params(request, DC_SEARCH_POST_FIELDS)
        with self.sandbox.lock:
            context = self.sandbox.render_context(v)
            body = self.sandbox.search.datacenter_search(
                context,
                params,
                endless=self.sandbox.hostile_paging(request),
                empty=self.sandbox.hostile_empty(request),
            )
        return json_response(body)

    def approximate_count(
        self, request: SandboxRequest, match: re.Match[str], v: str
    ) -> SandboxResponse:
        body = request.json()
        with self.sandbox.lock:
            return json_response(self.sandbox.search.approximate_count(body))

    def bulk_fetch(self, request: SandboxRequest, match: re.Match[str], v: str) -> SandboxResponse:
        body = request.json()
        with self.sandbox.lock:
            context = self.sandbox.render_context(v)
            return json_response(self.sandbox.search.bulk_fetch(context, body))

    def bulk_changelogs(
        self, request: SandboxRequest, match: re.Match[str], v: str
    ) -> SandboxResponse:
        body = request.json()
        with self.sandbox.lock:
            context = self.sandbox.render_context(v)
            endless = self.sandbox.hostile_paging(request)
            return json_response(bulk_changelogs(context, body, endless=endless))

    def statuses(self, request: SandboxRequest, match: re.Match[str], v: str) -> SandboxResponse:
        with self.sandbox.lock:
            context = self.sandbox.render_context(v)
            return json_response(statuses(context, self.sandbox.store))

    def search_removed(
        self, request: SandboxRequest, match: re.Match[str], v: str
    ) -> SandboxResponse:
        return json_response({"errorMessages": [SEARCH_REMOVED], "errors": {}}, 410)

    # -- agile -----------------------------------------------------------------------------
    def rank(self, request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
        body = request.json()
        if not self.sandbox.has_permission("SCHEDULE_ISSUES"):
            raise HttpError(403, {"errorMessages": [RANK_FORBIDDEN], "errors": {}})
        with self.sandbox.lock:
            result = rank_issues(self.sandbox, body)
        if result is None:
            return SandboxResponse(204)
        return json_response(result, 207)
