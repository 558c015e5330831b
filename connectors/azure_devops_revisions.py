"""Paging the reporting work item revisions feed of one project, with its guards.

`GET {org}/{project}/_apis/wit/reporting/workitemrevisions` ("Reporting Work Item Revisions -
Read Reporting Revisions Get", specs/ado-wit-7.1.json, api-version 7.1-preview.2) answers every
revision of every work item of the project in batches (`ReportingWorkItemRevisionsBatch`:
`values`, `continuationToken`, `nextLink`, `isLastBatch`). The token is a watermark: asked again
with it, the service answers only revisions made after it, so a nightly run continues where the
last one stopped and a run with nothing new costs one request.

The token is read from `continuationToken`, or from the `continuationToken` parameter of
`nextLink` when the answer has none (the official example of a first batch,
workItemRevisions/GET__wit_reporting_workItemRevisions.json, carries only `nextLink`). We never
follow `nextLink` itself: its host and api-version are the service's to choose (the examples
say `api-version=2.0`), and our own request keeps our fields, types and version.

A feed that would page without end fails with a `ConnectorError` instead: a batch that says more
follow but brings no revision newer than those already read, a token that comes back, a batch
without a token that says it is not the last, and more batches than `limits.max_pages`.

The feed is read on our own session (`AzureDevOpsClient.read_json`), not through the library's
`read_reporting_revisions_get`: azure-devops 7.1.0b4 declares `ReportingWorkItemRevisionsBatch`
with an empty attribute map, so every batch it deserializes is empty; and reading directly needs
no resource-location discovery, so a run with nothing new is one request even on a cold cache.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs, quote, urlsplit

from connectors.azure_devops_history import REVISION_FIELDS, STATE_CHANGE_DATE
from connectors.base import ConnectorError
from connectors.paging_guard import PageBudget, PagingLoopError, TokenTrail

REPORTING_API_VERSION = "7.1-preview.2"
"""The version of the reporting revisions operation in 7.1 (a preview API there; the library
sends the same, `read_reporting_revisions_get`)."""

TRACKER = "Azure DevOps"


@dataclass(frozen=True, slots=True)
class RevisionBatch:
    """One answer of the feed: the revisions not read before, and where the next one starts."""

    values: list[Any]
    token: str | None
    last: bool


def parse_batch(body: Any) -> RevisionBatch:
    """The parts of a `ReportingWorkItemRevisionsBatch` paging needs; `ConnectorError` when the
    answer is not one."""
    if not isinstance(body, Mapping):
        raise ConnectorError(
            "Azure DevOps answered the work item revisions request with an unexpected body"
        )
    values = body.get("values")
    if values is None:
        values = []
    if not isinstance(values, list):
        raise ConnectorError(
            "Azure DevOps answered the work item revisions request with `values` that is not a list"
        )
    token = body.get("continuationToken")
    if not isinstance(token, str) or not token:
        token = _token_of_link(body.get("nextLink"))
    return RevisionBatch(values, token, body.get("isLastBatch") is True)


def _token_of_link(link: Any) -> str | None:
    if not isinstance(link, str):
        return None
    tokens = parse_qs(urlsplit(link).query).get("continuationToken")
    return tokens[-1] if tokens and tokens[-1] else None


class RevisionFeed:
    """Reads the feed from `cursor` to its last batch; `fetch(token)` makes one request and
    returns the decoded answer. `token` is where the next run continues, valid once `batches()`
    is exhausted."""

    def __init__(self, fetch: Callable[[str | None], Any], max_pages: int) -> None:
        self._fetch = fetch
        self._max_pages = max_pages
        self._latest: dict[int, int] = {}
        self.token: str | None = None

    def batches(self, cursor: str | None) -> Iterator[RevisionBatch]:
        """Each batch with only the revisions newer than those already read of their item."""
        budget = PageBudget(TRACKER, "work item revisions", self._max_pages)
        trail = TokenTrail(
            f"{TRACKER} sent the continuation token {{token!r}} again; stopped reading pages"
        )
        if cursor is not None:
            trail.follow(cursor)
        token = cursor
        self.token = cursor
        while True:
            budget.spend()
            batch = parse_batch(self._fetch(token))
            fresh = [raw for raw in batch.values if self._is_new(raw)]
            if batch.token is not None:
                self.token = batch.token
            yield RevisionBatch(fresh, batch.token, batch.last)
            if batch.last:
                return
            if not fresh:
                raise PagingLoopError(
                    f"{TRACKER} said more work item revisions follow but sent none it had not "
                    "sent already; stopped reading pages"
                )
            if batch.token is None:
                raise ConnectorError(
                    f"{TRACKER} said more work item revisions follow but sent no continuation "
                    "token; stopped reading pages"
                )
            token = trail.follow(batch.token)

    def _is_new(self, raw: Any) -> bool:
        """False for a revision of an item whose same or later revision was read already. A
        revision without id or number counts as new here: the mapping reports it."""
        if not isinstance(raw, Mapping):
            return True
        item_id, rev = raw.get("id"), raw.get("rev")
        if not isinstance(item_id, int) or not isinstance(rev, int):
            return True
        if rev <= self._latest.get(item_id, 0):
            return False
        self._latest[item_id] = rev
        return True


class JsonReader(Protocol):
    def read_json(
        self, path: str, operation: str, params: Mapping[str, str] | None = None
    ) -> Any: ...


class RevisionReader:
    """One request of the feed (`fetch` of a `RevisionFeed`), asking only for the fields the
    history needs and the scope's work item types.

    A server whose process lacks `StateChangeDate` refuses to be asked for it (TF51535): the
    request is made again without it, and later ones of this connector leave it out, with one
    warning (what is lost: see `azure_devops_history`).
    """

    def __init__(
        self,
        client: JsonReader,
        project: str,
        types: Sequence[str],
        warn: Callable[[str], None],
    ) -> None:
        self._client = client
        self._path = f"{quote(project, safe='')}/_apis/wit/reporting/workitemrevisions"
        self._types = ",".join(types)
        self._warn = warn
        self.fields: tuple[str, ...] = REVISION_FIELDS

    def __call__(self, token: str | None) -> Any:
        try:
            return self._read(token)
        except ConnectorError as refused:
            if STATE_CHANGE_DATE not in self.fields or STATE_CHANGE_DATE not in str(refused):
                raise
        self.fields = tuple(name for name in self.fields if name != STATE_CHANGE_DATE)
        self._warn(
            f"the work item revisions have no {STATE_CHANGE_DATE}: a state change first seen "
            "in a later run cannot be told from another edit and is recorded as one"
        )
        return self._read(token)

    def _read(self, token: str | None) -> Any:
        params = {"api-version": REPORTING_API_VERSION, "fields": ",".join(self.fields)}
        if self._types:
            params["types"] = self._types
        if token is not None:
            params["continuationToken"] = token
        return self._client.read_json(self._path, "read the work item revisions", params)
