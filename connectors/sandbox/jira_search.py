"""Search and bulk read: Cloud `search/jql` (token paging), `search/approximate-count` and
`issue/bulkfetch`; Data Center `search` (startAt/maxResults/total). On both searches
`expand=changelog` adds each hit's history as a `PageOfChangelogs` (see `jira_history`;
specs/jira-platform-v3.json lists `changelog` among the `expand` values of `search/jql`).

Page sizes (assumptions, documented because Atlassian gives only maxima):
- Cloud `search/jql`: `maxResults` defaults to 50. The spec says "max 5000 … the greatest number
  … when requesting `id` or `key` only" and "may return fewer … where a large number of fields
  … are requested"; the sandbox serves up to 5000 when only id/key are asked for and up to 100
  otherwise.
- Data Center `search`: capped at 1000, the default of `jira.search.views.default.max`
  (UNVERIFIED default, see specs/API_NOTES.md).

A Cloud search snapshots the matching ids on its first page; `nextPageToken` points into that
snapshot, so later pages return every item exactly once even while issues change (Atlassian:
tokens expire after 7 days; here the last 256 searches are kept). Data Center pages re-run the
query on every page, as offset paging does there.

`endless=True` (`Faults.endless_pages`) answers like a broken server that pages without end:
Cloud returns the snapshot's first page with a fresh token and `isLast: false` every time; Data
Center drops the keyset restriction (`key > "…"`) from the query, so it answers the same first
page again, and claims a `total` beyond the page. `empty=True` (`Faults.empty_answers`) finds
no issue, in a well-formed answer.
"""

from __future__ import annotations

import base64
import itertools
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connectors.sandbox.jira_history import page_of_changelogs
from connectors.sandbox.jira_render import (
    FieldSelection,
    RenderContext,
    encoded_issue,
    names_of,
    parse_field_list,
    schema_of,
    select_fields,
)
from connectors.sandbox.jira_store import IssueStore, StoredIssue
from connectors.sandbox.jql import JqlError
from connectors.sandbox.raw_json import RawJson, dumps
from connectors.sandbox.server import HttpError

CLOUD_DEFAULT_PAGE = 50
CLOUD_KEYS_PAGE_CAP = 5000
CLOUD_FIELDS_PAGE_CAP = 100
DC_DEFAULT_PAGE = 50
DC_PAGE_CAP = 1000
BULK_FETCH_LIMIT = 100
RECONCILE_LIMIT = 50
PROPERTIES_LIMIT = 5
SNAPSHOTS_KEPT = 256
KEYSET_RESTRICTION = re.compile(r'\s+AND\s+key\s*>\s*"[^"]*"', re.IGNORECASE)
"""The `AND key > "PAY-500"` of a keyset page, which an endless Data Center search drops."""
UNBOUNDED = (
    "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
)
BAD_TOKEN = "The provided next page token is invalid or expired."


def bad_request(*messages: str) -> HttpError:
    return HttpError(400, {"errorMessages": list(messages), "errors": {}})


@dataclass(frozen=True)
class _Snapshot:
    jql: str
    ids: list[int]


class SearchService:
    """The search endpoints of one sandbox. `run_jql(jql, strict)` evaluates a query (the
    sandbox caches it); `after_read(issues)` lets the sandbox simulate edits after a read."""

    def __init__(
        self,
        store: IssueStore,
        run_jql: Callable[[str, bool], tuple[list[StoredIssue], list[str], bool]],
        after_read: Callable[[list[StoredIssue]], None],
    ) -> None:
        self.store = store
        self.run_jql = run_jql
        self.after_read = after_read
        self._snapshots: OrderedDict[int, _Snapshot] = OrderedDict()
        self._snapshot_ids = itertools.count(1)
        self._fresh_tokens = itertools.count(1)
        self.fetch_errors: set[str] = set()

    # -- Cloud ------------------------------------------------------------------------------
    def cloud_search(
        self,
        context: RenderContext,
        params: dict[str, Any],
        *,
        endless: bool = False,
        empty: bool = False,
    ) -> dict[str, Any]:
        jql = str(params.get("jql") or "")
        selection = select_fields(parse_field_list(params.get("fields")), "id", context.fields)
        cap = CLOUD_KEYS_PAGE_CAP if selection.keys_only else CLOUD_FIELDS_PAGE_CAP
        # At least 1: an empty page with a token to the same place would loop a client forever.
        requested = _int(params.get("maxResults"), CLOUD_DEFAULT_PAGE, "maxResults", minimum=1)
        page_size = min(requested, cap)
        _check_list(params.get("properties"), PROPERTIES_LIMIT, "properties")
        _check_reconcile(params.get("reconcileIssues"))
        token = params.get("nextPageToken")
        if token:
            snapshot_id, offset = _decode_token(str(token))
            snapshot = self._snapshots.get(snapshot_id)
            if snapshot is None or snapshot.jql != jql:
                raise bad_request(BAD_TOKEN)
        else:
            issues, _, bounded = self._run(jql, True)
            if not bounded:
                raise bad_request(UNBOUNDED)
            if empty:
                issues = []
            snapshot_id, offset = self._remember(_Snapshot(jql, [i.id for i in issues]))
            snapshot = self._snapshots[snapshot_id]
        if endless:
            offset = 0
        end = offset + page_size
        page = self._visible(snapshot.ids[offset:end])
        expand = set(parse_field_list(params.get("expand")))
        body: dict[str, Any] = {
            "issues": [_issue_json(context, issue, selection, expand) for issue in page],
            "isLast": end >= len(snapshot.ids) and not endless,
        }
        if endless:
            body["nextPageToken"] = _encode_token(snapshot_id, end + next(self._fresh_tokens))
        elif end < len(snapshot.ids):
            body["nextPageToken"] = _encode_token(snapshot_id, end)
        self._add_names(body, selection, expand)
        self._read(page, selection)
        return body

    def approximate_count(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or set(body) - {"jql"}:
            raise bad_request('The request body must be {"jql": "..."}.')
        issues, _, bounded = self._run(str(body.get("jql") or ""), True)
        if not bounded:
            raise bad_request(UNBOUNDED)
        return {"count": len(issues)}

    def bulk_fetch(self, context: RenderContext, body: Any) -> dict[str, Any]:
        allowed = {"issueIdsOrKeys", "fields", "expand", "properties", "fieldsByKeys"}
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object.")
        reject_unknown(body, allowed, "BulkFetchIssueRequestBean")
        wanted = body.get("issueIdsOrKeys")
        if not isinstance(wanted, list) or not 1 <= len(wanted) <= BULK_FETCH_LIMIT:
            raise bad_request(
                f"'issueIdsOrKeys' must list between 1 and {BULK_FETCH_LIMIT} issue ids or keys."
            )
        _check_list(body.get("properties"), PROPERTIES_LIMIT, "properties")
        selection = select_fields(
            parse_field_list(body.get("fields")), "*navigable", context.fields
        )
        found: dict[int, StoredIssue] = {}
        errors = []
        for reference in wanted:
            issue = self.store.find(str(reference))
            if issue is None:
                continue  # unknown and invisible issues are silently left out (spec)
            if issue.key in self.fetch_errors:
                errors.append(
                    {"id": str(issue.id), "errorMessage": "Issue could not be retrieved. Retry."}
                )
                continue
            found[issue.id] = issue
        issues = [found[issue_id] for issue_id in sorted(found)]
        expand = set(parse_field_list(body.get("expand")))
        result = {
            "issues": [encoded_issue(context, issue, selection, expand) for issue in issues],
            "issueErrors": errors,
        }
        self._read(issues, selection)
        return result

    # -- Data Center ------------------------------------------------------------------------
    def datacenter_search(
        self,
        context: RenderContext,
        params: dict[str, Any],
        *,
        endless: bool = False,
        empty: bool = False,
    ) -> dict[str, Any]:
        jql = str(params.get("jql") or "")
        if endless:
            jql = KEYSET_RESTRICTION.sub("", jql)
        start = _int(params.get("startAt"), 0, "startAt", minimum=0)
        page_size = min(_int(params.get("maxResults"), DC_DEFAULT_PAGE, "maxResults"), DC_PAGE_CAP)
        validate = str(params.get("validateQuery", "strict")).lower()
        strict = validate not in ("warn", "false", "none")
        selection = select_fields(
            parse_field_list(params.get("fields")), "*navigable", context.fields
        )
        issues, warnings, _ = self._run(jql, strict)
        if empty:
            issues = []
        page = issues[start : start + page_size]
        expand = set(parse_field_list(params.get("expand")))
        body: dict[str, Any] = {
            "expand": "schema,names",
            "startAt": start,
            "maxResults": page_size,
            # Endless: always more to come, so a client pages on whatever the scope's size.
            "total": max(len(issues), start + page_size + 1) if endless else len(issues),
            "issues": [_issue_json(context, issue, selection, expand) for issue in page],
        }
        if warnings:
            body["warningMessages"] = warnings
        self._add_names(body, selection, expand)
        self._read(page, selection)
        return body

    # -- internals --------------------------------------------------------------------------
    def _run(self, jql: str, strict: bool) -> tuple[list[StoredIssue], list[str], bool]:
        """`run_jql`, with a query error as Jira's 400 answer (`errorMessages`)."""
        try:
            return self.run_jql(jql, strict)
        except JqlError as error:
            raise bad_request(*error.messages) from error

    def _remember(self, snapshot: _Snapshot) -> tuple[int, int]:
        snapshot_id = next(self._snapshot_ids)
        self._snapshots[snapshot_id] = snapshot
        while len(self._snapshots) > SNAPSHOTS_KEPT:
            self._snapshots.popitem(last=False)
        return snapshot_id, 0

    def _visible(self, ids: list[int]) -> list[StoredIssue]:
        """Issues deleted or hidden since the snapshot drop out of their page."""
        by_id, hidden = self.store.by_id, self.store.hidden
        return [by_id[i] for i in ids if i in by_id and i not in hidden]

    def _read(self, issues: list[StoredIssue], selection: FieldSelection) -> None:
        if selection.fields:
            self.after_read(issues)

    @staticmethod
    def _add_names(body: dict[str, Any], selection: FieldSelection, expand: set[str]) -> None:
        if "names" in expand:
            body["names"] = names_of(selection.fields)
        if "schema" in expand:
            body["schema"] = schema_of(selection.fields)


def _issue_json(
    context: RenderContext, issue: StoredIssue, selection: FieldSelection, expand: set[str]
) -> Any:
    """A search hit; with `expand=changelog` it carries its history. The changelog is rendered
    on every read and spliced after the cached encoding of the fields (the cache holds field
    renderings only; a 30,000-issue search would otherwise render every issue again)."""
    encoded = encoded_issue(context, issue, selection)
    if "changelog" not in expand:
        return encoded
    changelog = dumps(page_of_changelogs(context, issue))
    return RawJson(encoded[:-1] + b',"changelog":' + changelog + b"}")


def _encode_token(snapshot_id: int, offset: int) -> str:
    return base64.urlsafe_b64encode(f"sandbox:{snapshot_id}:{offset}".encode()).decode()


def _decode_token(token: str) -> tuple[int, int]:
    try:
        prefix, snapshot, offset = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        if prefix != "sandbox":
            raise ValueError(prefix)
        return int(snapshot), int(offset)
    except (ValueError, UnicodeDecodeError) as error:
        raise bad_request(BAD_TOKEN) from error


def _int(value: Any, default: int, name: str, minimum: int = 0) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError) as error:
        raise bad_request(f"The value '{value}' is not valid for '{name}'.") from error
    if number < minimum:
        raise bad_request(f"'{name}' must be at least {minimum}.")
    return number


def _check_list(value: Any, limit: int, name: str) -> None:
    if len(parse_field_list(value)) > limit:
        raise bad_request(f"At most {limit} '{name}' may be requested.")


def _check_reconcile(value: Any) -> None:
    """`reconcileIssues`: at most 50 issue ids. The sandbox is always consistent, so it only
    validates them."""
    ids = parse_field_list(value)
    if len(ids) > RECONCILE_LIMIT:
        raise bad_request(f"'reconcileIssues' accepts at most {RECONCILE_LIMIT} issue ids.")
    if not all(item.isdigit() for item in ids):
        raise bad_request("'reconcileIssues' must list numeric issue ids.")


def reject_unknown(body: dict[str, Any], allowed: set[str], bean: str) -> None:
    """Jira's JSON binding refuses unknown properties (the spec beans are closed)."""
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise bad_request(
            f'Unrecognized field "{unknown[0]}" (class {bean}), not marked as ignorable'
        )
