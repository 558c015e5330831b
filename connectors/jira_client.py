"""HTTP calls to Jira (Cloud and Data Center), and nothing else: paths, bodies, paging, errors.

It drives the `jira` library's session, so the library's auth (basic or bearer) and TLS
settings apply, and the session's mounted `PolicyAdapter` counts and retries every call. The
library's own `ResilientSession` retries are off (`max_retries=0`: its loop runs once and
raises `JIRAError` on any non-2xx); the one other loop in the library, `server_info()`
re-asking up to 3 times when the answer is empty (Jira bug JRA-59676), is bounded and counted.

Endpoints the library lacks or gets wrong for us are called on the session directly:
- Cloud `POST /rest/api/3/search/jql` (token paging; the old `/search` answers 410 on Cloud),
- Cloud `POST /rest/api/3/issue/bulkfetch` (≤ 100 issues a call),
- Cloud `POST /rest/api/3/changelog/bulkfetch` (≤ 1,000 issues a call, token paging),
- Data Center `POST /rest/api/2/search` (startAt/maxResults/total),
- `PUT /rest/agile/1.0/issue/rank`: the library ranks one issue per call and ignores 207.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
from jira import JIRA, JIRAError

from connectors.base import ConnectorError
from connectors.http import RetryBudgetExceeded
from connectors.jira_paging import KEY_ORDER, ChangelogPaginator, KeyPaginator, TokenPaginator
from connectors.paging_guard import PageBudget
from connectors.settings import TransferLimits

Flavour = Literal["cloud", "datacenter"]

BULKFETCH_LIMIT = 100
"""`bulkFetchIssues`: "up to 100 issues" per call (specs/jira-platform-v3.json)."""
CHANGELOG_ISSUES_LIMIT = 1000
"""`getBulkChangelogs`: "the changelogs of up to 1000 issues" per request."""
CHANGELOG_PAGE = 10000
"""`BulkChangelogRequestBean.maxResults` maximum: changelogs per page."""
RANK_LIMIT = 50
"""`rankIssues`: "At most 50 issues may be ranked at once" (specs/jira-software-agile.json)."""
GATEWAY_URL = "https://api.atlassian.com/ex/jira/{cloud_id}"
"""Jira Cloud's API gateway: scoped API tokens (the only kind a service account gets, and
OAuth 2.0 tokens) are accepted only here, not at the site's own address."""
_GATEWAY_PATH = re.compile(r"/ex/jira/([A-Za-z0-9-]+)/?$")


def gateway_cloud_id(base_url: str) -> str | None:
    """The cloud id when `base_url` is the API gateway address of a site
    (`…/ex/jira/<cloudId>`), else None (the site's own address, or Data Center)."""
    match = _GATEWAY_PATH.search(urlsplit(base_url).path)
    return match.group(1) if match else None


def tenant_cloud_id(site_url: str, *, timeout: float, verify: bool = True) -> str | None:
    """The cloud id a Jira Cloud site announces at `/_edge/tenant_info` (no credentials
    needed), or None when the address answers no such thing (Data Center, a typo, offline).
    Asked only to explain a refused sign-in, so it is a plain request outside the counted
    session, and it never sends the credentials."""
    try:
        response = requests.get(
            f"{site_url.rstrip('/')}/_edge/tenant_info", timeout=timeout, verify=verify
        )
        body = response.json() if response.ok else None
    except (requests.RequestException, ValueError):
        return None
    cloud_id = body.get("cloudId") if isinstance(body, dict) else None
    return cloud_id if isinstance(cloud_id, str) and cloud_id.strip() else None


def browse_url(base_url: str, info: Mapping[str, Any]) -> str:
    """The address of issue pages: the site's `baseUrl` from serverInfo when `base_url` is
    the API gateway, else `base_url` itself (a Data Center behind a proxy may report an
    internal `baseUrl`, so it is only trusted where it is needed)."""
    site = info.get("baseUrl")
    if gateway_cloud_id(base_url) is not None and isinstance(site, str) and site.strip():
        return site.strip().rstrip("/")
    return base_url.rstrip("/")


@dataclass(frozen=True, slots=True)
class BulkFetchResult:
    issues: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    """`issueErrors`: issues Jira could not return this time ("a retriable error or payload
    constraint"); missing or invisible issues are silently left out of both lists."""


def error_text(response: requests.Response) -> str:
    """Jira's own words from an error answer: `errorMessages` and `errors` (field: message)."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason or f"HTTP {response.status_code}"
    if not isinstance(body, Mapping):
        return str(body)[:500]
    parts = [str(m) for m in body.get("errorMessages") or () if m]
    errors = body.get("errors")
    if isinstance(errors, Mapping):
        parts += [f"{name}: {message}" for name, message in errors.items()]
    for single in ("errorMessage", "message"):
        if isinstance(body.get(single), str):
            parts.append(body[single])
    return "; ".join(parts) or f"HTTP {response.status_code}"


class JiraClient:
    """The Jira calls spm-sync makes. `use_flavour` picks the REST version: Cloud v3, DC v2."""

    def __init__(
        self, jira: JIRA, base_url: str, *, max_pages: int = TransferLimits().max_pages
    ) -> None:
        self.jira = jira
        self.base_url = base_url.rstrip("/")
        self.max_pages = max_pages
        """Most requests of one paged search (`limits.max_pages`)."""
        self.flavour: Flavour = "datacenter"

    @property
    def api(self) -> str:
        return "3" if self.flavour == "cloud" else "2"

    def use_flavour(self, flavour: Flavour) -> None:
        self.flavour = flavour
        # The library builds its URLs from this option on every call (JIRA._get_url).
        self.jira._options["rest_api_version"] = self.api

    # -- library calls -----------------------------------------------------------------------
    def server_info(self) -> dict[str, Any]:
        return self._library_call(self.jira.server_info, "read serverInfo")

    def fields(self) -> list[dict[str, Any]]:
        return self._library_call(self.jira.fields, "list fields (GET /field)")

    # -- search ------------------------------------------------------------------------------
    def search_jql_pages(
        self, jql: str, fields: Sequence[str], max_results: int
    ) -> Iterator[list[dict[str, Any]]]:
        """Cloud: the pages of `POST /rest/api/3/search/jql`
        (searchAndReconsileIssuesUsingJqlPost)."""
        paginator = TokenPaginator()
        budget = PageBudget("Jira", "search pages", self.max_pages)
        while paginator.has_more():
            body: dict[str, Any] = {"jql": jql, "fields": list(fields), "maxResults": max_results}
            if (token := paginator.next_token()) is not None:
                body["nextPageToken"] = token
            budget.spend()
            page = self._read("POST", f"/rest/api/{self.api}/search/jql", "search issues", body)
            yield paginator.advance(page)

    def keyset_pages(
        self, scope: Callable[[], str], fields: Sequence[str], max_results: int
    ) -> Iterator[list[dict[str, Any]]]:
        """Data Center: every page of `POST /rest/api/2/search` for `scope()` (re-evaluated per
        page, for relative dates), keyset-paged by key (see `connectors.jira_paging`)."""
        paginator = KeyPaginator()
        budget = PageBudget("Jira", "search pages", self.max_pages)
        while paginator.has_more():
            restriction = paginator.restriction()
            where = scope() if restriction is None else f"{scope()} AND {restriction}"
            body = {
                "jql": f"{where} {KEY_ORDER}",
                "startAt": 0,
                "maxResults": max_results,
                "fields": list(fields),
            }
            budget.spend()
            response = self.send("POST", "/rest/api/2/search", body)
            if (
                response.status_code == 400
                and paginator.anchors
                and paginator.anchors[0] in error_text(response)
                and paginator.drop_anchor()
            ):
                continue  # the last key we saw was deleted since: step back one key
            page = self.parse(response, "search issues")
            paginator.advance(page)
            yield list(page.get("issues") or [])

    def bulkfetch(self, ids_or_keys: Sequence[str], fields: Sequence[str]) -> BulkFetchResult:
        """Cloud: `POST /rest/api/3/issue/bulkfetch` for at most 100 issues."""
        if not 0 < len(ids_or_keys) <= BULKFETCH_LIMIT:
            raise ValueError(f"bulkfetch takes 1..{BULKFETCH_LIMIT} issues")
        body = {"issueIdsOrKeys": list(ids_or_keys), "fields": list(fields)}
        page = self._read("POST", f"/rest/api/{self.api}/issue/bulkfetch", "fetch issues", body)
        return BulkFetchResult(list(page.get("issues") or []), list(page.get("issueErrors") or []))

    # -- history -----------------------------------------------------------------------------
    def changelog_pages(
        self, ids_or_keys: Sequence[str], field_ids: Sequence[str]
    ) -> Iterator[list[tuple[str, list[Any]]]]:
        """Cloud: the pages of `POST /rest/api/3/changelog/bulkfetch` for at most 1,000 issues,
        each as (issue id, changelogs not seen before) (see `ChangelogPaginator`)."""
        if not 0 < len(ids_or_keys) <= CHANGELOG_ISSUES_LIMIT:
            raise ValueError(f"changelog/bulkfetch takes 1..{CHANGELOG_ISSUES_LIMIT} issues")
        paginator = ChangelogPaginator()
        budget = PageBudget("Jira", "changelog pages", self.max_pages)
        while paginator.has_more():
            body: dict[str, Any] = {
                "issueIdsOrKeys": list(ids_or_keys),
                "fieldIds": list(field_ids),
                "maxResults": CHANGELOG_PAGE,
            }
            if (token := paginator.next_token()) is not None:
                body["nextPageToken"] = token
            budget.spend()
            path = f"/rest/api/{self.api}/changelog/bulkfetch"
            yield paginator.advance(self._read("POST", path, "read changelogs", body))

    def search_page(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Data Center: one `POST /rest/api/2/search` answer, as asked."""
        result: dict[str, Any] = self._read("POST", "/rest/api/2/search", "search issues", body)
        return result

    def statuses(self) -> list[dict[str, Any]]:
        """`GET status` (getStatuses): every status of the site with its category."""
        what = "list statuses (GET /status)"
        response = self.send("GET", f"/rest/api/{self.api}/status")
        if not response.ok:
            raise ConnectorError(self.explain(response, what))
        try:
            body = response.json()
        except ValueError:
            raise ConnectorError(f"{what}: Jira's answer is not JSON") from None
        if not isinstance(body, list):
            raise ConnectorError(f"{what}: Jira's answer is not a list of statuses")
        return [status for status in body if isinstance(status, dict)]

    # -- writes: the caller reads the status, per issue --------------------------------------
    def edit_issue(
        self, key: str, body: Mapping[str, Any], *, notify_users: bool
    ) -> requests.Response:
        params = None if notify_users else {"notifyUsers": "false"}
        return self.send("PUT", f"/rest/api/{self.api}/issue/{key}", body, params=params)

    def rank_issues(self, body: Mapping[str, Any]) -> requests.Response:
        return self.send("PUT", "/rest/agile/1.0/issue/rank", body)

    # -- plumbing ----------------------------------------------------------------------------
    def send(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        params: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Any answer as a Response (the library raises on non-2xx; we want the status).

        Raises `ConnectorError` only when there is no answer: connection failures after the
        policy's retries, or a Retry-After beyond what the run may wait.
        """
        url = f"{self.base_url}{path}"
        data = None if body is None else json.dumps(body)
        with self._without_answer(f"{method} {path}"):
            try:
                return self.jira._session.request(method, url, data=data, params=params)
            except JIRAError as error:
                if error.response is None:
                    raise
                return error.response

    def _read(self, method: str, path: str, what: str, body: Mapping[str, Any]) -> Any:
        response = self.send(method, path, body)
        return self.parse(response, what)

    def parse(self, response: requests.Response, what: str) -> Any:
        if not response.ok:
            raise ConnectorError(self.explain(response, what))
        try:
            body = response.json()
        except ValueError:
            raise ConnectorError(
                f"{what}: Jira answered {response.status_code} with a body that is not JSON"
            ) from None
        if not isinstance(body, dict):  # every endpoint read through here answers an object
            raise ConnectorError(
                f"{what}: Jira answered {response.status_code} with JSON that is not an object"
            )
        return body

    def _library_call(self, call: Any, what: str) -> Any:
        with self._without_answer(what):
            try:
                return call()
            except JIRAError as error:
                if error.response is None:
                    raise
                raise ConnectorError(self.explain(error.response, what)) from None
            except ValueError as error:
                raise ConnectorError(f"{what}: Jira's answer is not JSON ({error})") from None

    @contextmanager
    def _without_answer(self, what: str) -> Iterator[None]:
        """Failures that leave no answer to explain, as `ConnectorError`s: no connection after
        the policy's retries, a Retry-After beyond what the run may wait, a library error."""
        try:
            yield
        except JIRAError as error:
            raise ConnectorError(f"{what}: {error.text}") from None
        except RetryBudgetExceeded as error:
            raise ConnectorError(f"{what}: Jira is throttling: {error}") from None
        except (requests.ConnectionError, requests.Timeout) as error:
            raise ConnectorError(
                f"cannot reach Jira at {self.base_url} ({what}): {error}"
            ) from None

    def explain(self, response: requests.Response, what: str) -> str:
        """A message for the user about a failed call they can do something about."""
        status = response.status_code
        text = error_text(response)
        if status == 401:
            scoped = (
                ""
                if gateway_cloud_id(self.base_url) or ".atlassian.net" not in self.base_url
                else "; a scoped API token works only through "
                + GATEWAY_URL.format(cloud_id="<cloudId>")
            )
            return (
                f"{what}: Jira at {self.base_url} rejected the credentials (HTTP 401); check "
                f"the user and token in the configured environment variables{scoped}"
            )
        if status == 403:
            return f"{what}: not allowed (HTTP 403): {text}"
        if status == 410:
            return (
                f"{what}: Jira answered 410 Gone ({text}). Jira Cloud removed this search API; "
                "this connection is configured as Data Center but talks to Jira Cloud: set "
                "`deployment: cloud` (or `auto`)"
            )
        if status == 404:
            cloud_id = gateway_cloud_id(self.base_url)
            if cloud_id is not None:
                return (
                    f"{what}: the API gateway knows no Jira site with cloud id {cloud_id} "
                    "(HTTP 404); the site's cloud id is at https://<site>.atlassian.net"
                    "/_edge/tenant_info"
                )
            return f"{what}: {response.url} not found (HTTP 404); is the URL Jira's base URL?"
        if status in (429, 503):
            return f"{what}: Jira kept answering {status} after every retry: {text}"
        if status == 400:
            return f"{what}: Jira rejected the request: {text}"
        return f"{what}: Jira answered HTTP {status}: {text}"
