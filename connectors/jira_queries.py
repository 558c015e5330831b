"""Saved JQL queries on Jira (Cloud and Data Center), answered with the fewest requests.

Requests per distinct query (see `connectors.tracker_queries` for what counts as distinct):
- Cloud, `want="count"`: one `POST /rest/api/3/search/approximate-count` (countIssues,
  specs/jira-platform-v3.json: "an estimated count ... Recent updates might not be immediately
  visible"), so the answer is marked approximate. It needs a bounded query, like `search/jql`.
- Data Center, `want="count"`: one `POST /rest/api/2/search` with `maxResults: 0`, which
  returns no issue and the exact `total`.
- `want="keys"`: the search's pages with `key` alone: Cloud `search/jql` token pages of up to
  5,000 (the spec's maximum, "achieved when requesting `id` or `key` only"; `fields: ["id"]`
  would answer ids without keys), Data Center keyset pages of up to 1,000, as the key scan.
- `want="items"`: the search's pages with `status` (its `statusCategory.key` says done) and the
  resolved field: Cloud `search/jql` token pages (as many issues a page as Jira gives for two
  fields; 100 in the sandbox), Data Center keyset pages of up to 1,000
  (`connectors.jira_paging`), with the paging guards of the pull. The query's own ORDER BY is
  dropped for the key order the pagers need.

A field is resolved against the run's `GET field` answer like the WSJF inputs
(`resolve_number_field`); a value that is not a number reads as None, as a missing one does.
What Jira refuses (a 400 with `errorMessages`, a 429/503 still there after the retry policy)
becomes `QueryRefused` with Jira's words, for that query alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from connectors.base import (
    ConnectorError,
    QueryAnswer,
    QueryMatch,
    QueryRefused,
    TrackerQuery,
)
from connectors.jira_client import Flavour, JiraClient
from connectors.jira_fields import ResolvedField, resolve_number_field
from connectors.jira_paging import KEY_ORDER
from connectors.tracker_queries import (
    Answer,
    AskedQuery,
    each_in_parallel,
    run_all,
    without_order,
)
from connectors.values import number_or_problem

ITEMS_PAGE_CLOUD = 5000
"""Asked of `search/jql`: its maximum. With fields beyond id/key Jira "may return fewer items
per page" (specs/jira-platform-v3.json); with only `status` and one number it decides how many
(the sandbox serves 100), and asking for more never costs a request."""
ITEMS_PAGE_DATACENTER = 1000
"""As the pull: Data Center caps a page at `jira.search.views.default.max`."""
KEYS_PAGE_CLOUD = 5000
"""`search/jql` "returns max 5000 issues" a page when only id or key is requested."""
KEYS_FIELDS = ["key"]
COUNT_PATHS: Mapping[Flavour, str] = {
    "cloud": "/rest/api/3/search/approximate-count",
    "datacenter": "/rest/api/2/search",
}


class JiraQueries:
    """Answers saved queries for one run; `catalog` is the run's `GET field` answer."""

    def __init__(
        self,
        client: JiraClient,
        flavour: Flavour,
        catalog: Sequence[Mapping[str, Any]],
        *,
        workers: int = 4,
    ) -> None:
        self.client = client
        self.flavour = flavour
        self.catalog = catalog
        self.workers = workers

    def run(self, queries: Sequence[TrackerQuery]) -> dict[str, Answer]:
        return run_all(
            queries,
            lambda distinct: each_in_parallel(
                distinct, self.answer, workers=self.workers, name="jira-queries"
            ),
        )

    def answer(self, query: AskedQuery) -> Answer:
        if not query.text:
            return QueryRefused("the query is empty")
        try:
            if query.want == "count":
                return self._count(query.text)
            if query.want == "keys":
                return self._keys(query.text)
            field = None
            if query.field is not None:
                field = resolve_number_field(self.catalog, "query field", query.field)
            return self._items(query.text, field)
        except ConnectorError as refused:  # UnknownFieldError included
            return QueryRefused(str(refused))

    def _count(self, jql: str) -> QueryAnswer:
        path = COUNT_PATHS[self.flavour]
        if self.flavour == "cloud":
            body: dict[str, Any] = {"jql": jql}
        else:
            body = {"jql": jql, "startAt": 0, "maxResults": 0}
        answer = self.client.parse(self.client.send("POST", path, body), "count issues")
        counted = answer.get("count" if self.flavour == "cloud" else "total")
        if not isinstance(counted, int) or isinstance(counted, bool) or counted < 0:
            raise ConnectorError(f"count issues: Jira answered without a count ({counted!r})")
        return QueryAnswer(counted, approximate=self.flavour == "cloud")

    def _keys(self, jql: str) -> QueryAnswer:
        keys: dict[str, None] = {}
        for page in self._pages(jql, KEYS_FIELDS, KEYS_PAGE_CLOUD):
            for issue in page:
                key = issue.get("key")
                if isinstance(key, str) and key:
                    keys.setdefault(key)
        return QueryAnswer(len(keys), keys=tuple(keys))

    def _items(self, jql: str, field: ResolvedField | None) -> QueryAnswer:
        fields = ["status"] if field is None else ["status", field.id]
        matches: dict[str, QueryMatch] = {}
        for page in self._pages(jql, fields, ITEMS_PAGE_CLOUD):
            for issue in page:
                match = _match(issue, field)
                if match is not None:
                    matches.setdefault(match.key, match)
        return QueryAnswer(len(matches), matches=tuple(matches.values()))

    def _pages(
        self, jql: str, fields: list[str], cloud_page: int
    ) -> Iterable[list[dict[str, Any]]]:
        """The query's issues page by page, in key order (its own ORDER BY dropped): Cloud's
        token pages of `cloud_page`, Data Center's key-set pages."""
        where = f"({without_order(jql)})"
        if self.flavour == "cloud":
            return self.client.search_jql_pages(f"{where} {KEY_ORDER}", fields, cloud_page)
        return self.client.keyset_pages(lambda: where, fields, ITEMS_PAGE_DATACENTER)


def _match(issue: Mapping[str, Any], field: ResolvedField | None) -> QueryMatch | None:
    key = issue.get("key")
    if not isinstance(key, str) or not key:
        return None
    values = issue.get("fields")
    values = values if isinstance(values, Mapping) else {}
    status = values.get("status")
    category = status.get("statusCategory") if isinstance(status, Mapping) else None
    done = isinstance(category, Mapping) and category.get("key") == "done"
    value = None
    if field is not None:
        value, _ = number_or_problem(values.get(field.id))
    return QueryMatch(key, done, value)


def stored_field(
    catalog: Sequence[Mapping[str, Any]], inputs: Mapping[str, ResolvedField], name: str
) -> str | None:
    """The WSJF input of `WorkItem` whose configured field `name` resolves to (as a query's
    field is resolved: by name or id), None when it resolves to another field or to none
    (`connectors.base.StoredFieldsConnector`)."""
    try:
        wanted = resolve_number_field(catalog, "query field", name)
    except ConnectorError:
        return None
    return next((input_ for input_, field in inputs.items() if field.id == wanted.id), None)
