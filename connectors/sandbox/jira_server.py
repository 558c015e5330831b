"""A Jira Cloud / Data Center sandbox on 127.0.0.1 that the connectors and the unmodified
`jira` library talk to as they talk to Atlassian.

    with JiraSandbox(generate_portfolio(2_000).jira) as jira:
        client = JIRA(jira.url, basic_auth=jira.basic_auth)

Both REST versions are served (`/rest/api/2`, which the `jira` library uses, and `/rest/api/3`;
they differ only in rich text), plus `/rest/agile/1.0/issue/rank`; `mypermissions` and
`issue/{key}/editmeta` answer what the user may do (`jira_permissions`). Flavours:
- "cloud": `search/jql` with nextPageToken, `search/approximate-count`, `issue/bulkfetch`,
  `changelog/bulkfetch`; the retired `/search` answers 410 with Atlassian's message; `parent`
  at every level.
- "datacenter": `/rest/api/2/search` with startAt/total (and `expand=changelog`), no
  `search/jql` or bulk fetch (404); "Epic Link" and "Parent Link" custom fields above sub-task
  level.
Both serve `GET status`. Every issue has a status history (`jira_history`): seeded, and
extended by every status change `touch` makes.

Decisions taken from the spec where behaviour is ambiguous:
- `notifyUsers=false` on editIssue needs Administer Jira/project; "If the user doesn't have the
  necessary permission the request is ignored" (specs/jira-platform-v3.json, editIssue). The
  sandbox reads this as: the flag is ignored, the edit is applied and watchers are notified.
  `admin=True` makes the flag honoured. Each `JiraWrite.notified` records the outcome.
- A rank move changes the Rank field like any field edit, so it moves `updated` (Jira records
  it in the issue history).
- Wrong or missing credentials answer 401 on every route, including serverInfo.
- Cloud only, as Atlassian serves them: `GET /_edge/tenant_info` (no credentials) answers the
  site's `{"cloudId": …}`, and the same API is served below `/ex/jira/<cloudId>`, standing in
  for the gateway `https://api.atlassian.com/ex/jira/<cloudId>`. A `scoped_token` (what a
  service account gets) is accepted only through that gateway path; serverInfo's `baseUrl`
  stays the site's address either way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from connectors.sandbox.jira_api import JiraRoutes
from connectors.sandbox.jira_edit import EditContext, JiraWrite, set_value
from connectors.sandbox.jira_fields import FieldDef, Flavour, field_catalogue
from connectors.sandbox.jira_history import (
    guessed_category,
    record_move,
    record_status_change,
    register_history_statuses,
)
from connectors.sandbox.jira_permissions import has_permission
from connectors.sandbox.jira_render import RenderContext, render_issue, select_fields
from connectors.sandbox.jira_search import SearchService
from connectors.sandbox.jira_store import IssueStore, StoredIssue
from connectors.sandbox.jql import parse
from connectors.sandbox.jql_eval import CompiledQuery, EvalContext, compile_query
from connectors.sandbox.portfolio import SeedItem
from connectors.sandbox.raw_json import RenderCache
from connectors.sandbox.server import (
    NO_FAULTS,
    Faults,
    HttpError,
    SandboxRequest,
    SandboxResponse,
    SandboxServer,
)

NOT_AUTHENTICATED = "You are not authenticated. Authentication required to perform this operation."
TOUCH_ALIASES = {"title": "summary", "team": "option", "type": "issuetype"}
READ_ONLY_KINDS = frozenset(
    {"issuekey", "issuelinks", "rank", "created", "updated", "project", "statusCategory"}
)
QUERY_CACHE_SIZE = 16
GATEWAY_PREFIX = "/ex/jira/"
CLOUD_ID = "4c7f3b2a-9d1e-4f6a-8b5c-2e0d9a7f1c63"


class JiraSandbox(SandboxServer):
    """See the module docstring. Test switches (plain sets of issue keys, change any time):
    `change_on_read` (edited by "a human" right after their next read), `rank_failures` (fail
    with 503 inside a 207 rank answer while listed), `fetch_errors` (reported in bulk fetch
    `issueErrors` instead of returned), `denied_permissions` (permission keys the user lacks,
    e.g. EDIT_ISSUES) and `off_screen_fields` (field ids not on the edit screen): see
    `jira_permissions`."""

    def __init__(
        self,
        items: Iterable[SeedItem] = (),
        *,
        flavour: Flavour = "cloud",
        faults: Faults = NO_FAULTS,
        user: str = "sandbox@example.com",
        token: str = "sandbox-token",
        admin: bool = False,
        time_zone: str = "UTC",
        clock: Callable[[], datetime] | None = None,
        deployment_type: Literal["Server", "DataCenter"] = "Server",
        cloud_id: str = CLOUD_ID,
        scoped_token: str | None = None,
    ) -> None:
        super().__init__(faults)
        self.cloud_id, self.scoped_token = cloud_id, scoped_token
        self._gateway = threading.local()
        if flavour not in ("cloud", "datacenter"):
            raise ValueError(f"flavour must be 'cloud' or 'datacenter', not {flavour!r}")
        self.flavour: Flavour = flavour
        self.user, self.token, self.admin = user, token, admin
        self.time_zone = ZoneInfo(time_zone)
        self.deployment_type = "Cloud" if flavour == "cloud" else deployment_type
        self.clock = clock or (lambda: datetime.now(UTC))
        self.fields: tuple[FieldDef, ...] = field_catalogue(flavour)
        self.store = IssueStore(self.clock)
        self.store.load(items)
        register_history_statuses(self.store)
        self.writes: list[JiraWrite] = []
        self.change_on_read: set[str] = set()
        self.rank_failures: set[str] = set()
        self.denied_permissions: set[str] = set()
        self.off_screen_fields: set[str] = set()
        self.search = SearchService(self.store, self.run_jql, self.after_read)
        self.render_cache = RenderCache()
        self._query_cache: dict[tuple[str, bool, int, int], tuple[list[int], list[str], bool]] = {}
        JiraRoutes(self).register()

    # -- credentials -----------------------------------------------------------------------
    @property
    def basic_auth(self) -> tuple[str, str]:
        return self.user, self.token

    @property
    def bearer_token(self) -> str:
        """A Data Center personal access token (Cloud API tokens work with Basic only)."""
        return self.token

    def authenticate(self, request: SandboxRequest) -> None:
        credentials = request.basic_credentials()
        if credentials == self.basic_auth:
            return
        through_gateway = getattr(self._gateway, "active", False)
        if through_gateway and credentials == (self.user, self.scoped_token):
            return
        scheme, _, credential = (request.headers.get("Authorization") or "").partition(" ")
        # A Cloud API token is not a bearer token; Data Center takes personal access tokens.
        bearer_ok = self.flavour == "datacenter" and credential.strip() == self.token
        if scheme.lower() == "bearer" and bearer_ok:
            return
        challenge = 'Basic realm="protected-area"'
        raise HttpError(
            401,
            {"errorMessages": [NOT_AUTHENTICATED], "errors": {}},
            {"WWW-Authenticate": challenge},
        )

    def dispatch(self, request: SandboxRequest) -> tuple[SandboxResponse, str]:
        """The site's tenant info, and the API below the gateway path (see module doc)."""
        cloud = self.flavour == "cloud"
        if cloud and request.method == "GET" and request.path == "/_edge/tenant_info":
            return SandboxResponse(200, {"cloudId": self.cloud_id}), "GET /_edge/tenant_info"
        if not request.path.startswith(GATEWAY_PREFIX):
            return super().dispatch(request)
        cloud_id, _, below = request.path.removeprefix(GATEWAY_PREFIX).partition("/")
        if not cloud or cloud_id != self.cloud_id:
            body = {"errorMessages": [f"No Jira site with cloud id {cloud_id}"]}
            return SandboxResponse(404, body), f"{request.method} (gateway: unknown site)"
        self._gateway.active = True
        try:
            return super().dispatch(replace(request, path=f"/{below}"))
        finally:
            self._gateway.active = False

    def throttled_response(self, status: int) -> SandboxResponse:
        if status == 429:
            # When the window resets: after Retry-After (the rate-limiting page's format).
            reset_at = self.clock() + timedelta(seconds=self.faults.retry_after_seconds)
            reset = reset_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
            headers = {
                "X-RateLimit-Limit": "100",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": reset,
                "RateLimit-Reason": "jira-burst-based",
            }
            body = {"errorMessages": ["Rate limit exceeded."], "errors": {}}
            return SandboxResponse(429, body, headers)
        return SandboxResponse(status, {"errorMessages": ["Service Unavailable"], "errors": {}})

    # -- queries ---------------------------------------------------------------------------
    def compile(self, jql: str, strict: bool = True) -> CompiledQuery:
        context = EvalContext(
            self.store, self.fields, self.flavour, self.time_zone, self.clock(), strict
        )
        return compile_query(parse(jql), context)

    def run_jql(self, jql: str, strict: bool = True) -> tuple[list[StoredIssue], list[str], bool]:
        """Matching issues in order, warnings, and whether the query was bounded. Results are
        cached until the data changes (and per minute, for relative dates)."""
        minute = int(self.clock().timestamp() // 60)
        cache_key = (jql, strict, self.store.version, minute)
        cached = self._query_cache.get(cache_key)
        if cached is None:
            compiled = self.compile(jql, strict)
            issues = compiled.run(self.store)
            cached = ([issue.id for issue in issues], compiled.warnings, compiled.bounded)
            if len(self._query_cache) >= QUERY_CACHE_SIZE:
                self._query_cache.clear()
            self._query_cache[cache_key] = cached
        ids, warnings, bounded = cached
        by_id = self.store.by_id
        return [by_id[i] for i in ids], warnings, bounded

    def edit_context(self, api_version: str) -> EditContext:
        """Without Edit Issues no field is on the edit screen (`jira_permissions`)."""
        version = "2" if api_version == "latest" else api_version
        if not self.has_permission("EDIT_ISSUES"):
            off_screen = frozenset(d.id for d in self.fields)
        else:
            off_screen = frozenset(self.off_screen_fields)
        return EditContext(self.store, self.fields, self.flavour, version, off_screen)

    def has_permission(self, key: str) -> bool:
        return has_permission(key, denied=self.denied_permissions, admin=self.admin)

    def render_context(self, api_version: str) -> RenderContext:
        base = self.url if self._httpd is not None else "http://127.0.0.1"
        version = "2" if api_version == "latest" else api_version
        return RenderContext(
            self.store, self.fields, self.flavour, version, base, self.time_zone, self.render_cache
        )

    # -- for tests -------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock()

    def issue(self, key: str, api_version: str | None = None) -> dict[str, Any]:
        """The issue as GET /rest/api/{3 on Cloud, 2 on DC}/issue/{key} returns it (all fields)."""
        version = api_version or ("3" if self.flavour == "cloud" else "2")
        with self.lock:
            issue = self._get(key)
            context = self.render_context(version)
            return render_issue(context, issue, select_fields([], "*all", self.fields))

    def field_id(self, name: str) -> str:
        for definition in self.fields:
            if definition.name == name:
                return definition.id
        known = ", ".join(sorted(d.name for d in self.fields))
        raise KeyError(f"no field named {name!r}; fields: {known}")

    def rank_order(self, keys: Iterable[str] | None = None) -> list[str]:
        """Keys by rank, top first: all issues, or only `keys`."""
        with self.lock:
            by_id = self.store.by_id
            ordered = [by_id[issue_id].key for issue_id in self.store.ranks.owners()]
        if keys is None:
            return ordered
        wanted = {key.upper() for key in keys}
        return [key for key in ordered if key in wanted]

    def touch(self, key: str, **changes: Any) -> None:
        """A human edit: set fields (by attribute name — summary/title, status, labels,
        priority, team, parent, description, business_value, … — or by field id) and move
        `updated` to now. Not recorded in `writes`."""
        with self.lock:
            issue = self._get(key)
            for name, value in changes.items():
                self._set_by_name(issue, name, value)
            self.store.bump(issue)

    def move(self, key: str, project: str) -> str:
        """A human moves the issue to another project: it gets a key there (returned), its
        history gets the move, and `updated` moves to now."""
        with self.lock:
            issue = self._get(key)
            old_key = issue.key
            self.store.move(issue, project.upper())
            record_move(self.store, issue, old_key)
            self.store.bump(issue)
            return issue.key

    def delete(self, key: str) -> None:
        with self.lock:
            self.store.delete(self._get(key))

    def hide(self, key: str, hidden: bool = True) -> None:
        """Make an issue invisible to the sandbox user (permissions), or visible again."""
        with self.lock:
            issue = self.store.by_key[key.upper()]
            (self.store.hidden.add if hidden else self.store.hidden.discard)(issue.id)
            self.store.changed()

    @property
    def fetch_errors(self) -> set[str]:
        return self.search.fetch_errors

    @property
    def rebalances(self) -> int:
        return self.store.ranks.rebalances

    def _get(self, key: str) -> StoredIssue:
        issue = self.store.find(key)
        if issue is None:
            raise KeyError(f"no issue {key!r} in the sandbox")
        return issue

    def _set_by_name(self, issue: StoredIssue, name: str, value: Any) -> None:
        if name == "status":
            self._set_status(issue, str(value))
            return
        kind = TOUCH_ALIASES.get(name, name)
        definition = next(
            (d for d in self.fields if d.id == name or d.slot == name or d.kind == kind), None
        )
        if definition is None or definition.kind in READ_ONLY_KINDS:
            raise TypeError(f"touch() cannot set {name!r}")
        if definition.kind == "issuetype":
            self.store.add_issue_type(str(value))
            issue.type = str(value)
            return
        if definition.kind in ("labels", "components") and value is not None:
            value = tuple(value)
        elif definition.kind == "number" and isinstance(value, int | float):
            value = float(value)  # number fields hold doubles, as Jira serves them
        set_value(issue, definition.kind, definition.slot, value)

    def _set_status(self, issue: StoredIssue, status: str) -> None:
        self.store.add_status(status, guessed_category(status))
        record_status_change(self.store, issue, status)
        issue.status = status
        issue.status_category = self.store.statuses[status][1]

    def after_read(self, issues: list[StoredIssue]) -> None:
        """Apply the "human edit right after a read" switch to the issues just served."""
        for issue in issues:
            if issue.key in self.change_on_read:
                self.change_on_read.discard(issue.key)
                self.store.bump(issue)


__all__ = ["JiraSandbox", "JiraWrite"]
