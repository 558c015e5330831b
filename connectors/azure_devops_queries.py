"""Saved WIQL queries on Azure DevOps, answered with the fewest requests.

Requests per distinct query (see `connectors.tracker_queries` for what counts as distinct):
- `want="count"`: one flat WIQL query (`POST {org}/{project}/_apis/wit/wiql`); it answers ids
  only, so the count is the number of ids, exact;
- `want="items"`: the same query, then `workitemsbatch` per 200 ids with `System.WorkItemType`,
  `System.State` and the resolved field; done means the state's category is Completed (or
  Removed: the categories are the pull's, `connectors.azure_devops_mapping`, read per type only
  for a custom state);
- the field list (`GET _apis/wit/fields`) once per call when some query names a field, to
  resolve names like the WSJF inputs and to suggest close ones for an unknown name.

The text is either a whole flat query (`SELECT ... FROM WorkItems WHERE ...`) or a condition,
which is asked as `[System.TeamProject] = @project AND (<condition>)`: a condition counts what
it says in the connection's project, not only the work item types and areas the connection
syncs (a measure may count bugs where the sync reads epics and features). Link queries
(`FROM WorkItemLinks`) answer pairs, not work items, and are refused.

The result cap: a flat query may return at most 20,000 work items; past that the service
refuses it (VS402337) and so do we, for that query, with a reason asking to narrow it. We send
no `$top`: with it, 20,000 ids would not tell a count of 20,000 from a larger one, and a count
that silently stops at the cap would be a wrong measure, not an estimate. Paging the query by id
as the pull does would need to rewrite the user's query; a measure over more than 20,000 items
is rare enough to ask for a narrower query instead.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from connectors.azure_devops_client import AzureDevOpsClient, ServiceRefused
from connectors.azure_devops_fields import FieldRef, catalog_index, close_matches, find_field
from connectors.base import (
    ConnectorError,
    QueryAnswer,
    QueryMatch,
    QueryRefused,
    TrackerQuery,
    UnknownFieldError,
)
from connectors.batches import chunked
from connectors.tracker_queries import Answer, AskedQuery, run_all
from connectors.values import number_or_problem
from connectors.wiql_builder import WIQL_RESULT_CAP, ResultCapExceeded
from spm_sync.domain import StatusCategory

BATCH_SIZE = 200
"""Most ids `workitemsbatch` takes per call ("Maximum 200")."""
MATCH_FIELDS = ("System.Id", "System.WorkItemType", "System.State")
_WHOLE_QUERY = re.compile(r"^\s*select\b", re.IGNORECASE)
_LINK_QUERY = re.compile(r"\bfrom\s+workitemlinks\b", re.IGNORECASE)

StateCategory = Callable[[str, str], StatusCategory | None]
"""(work item type, state) → category, as the connector knows it."""
LearnStates = Callable[[Iterable[Mapping[str, Any]]], None]
"""Reads the state categories of the types of these raw items that have an unknown state."""


def flat_query(text: str) -> str:
    """The WIQL to send for a saved query's text (see the module docstring)."""
    if _WHOLE_QUERY.match(text):
        return text.strip()
    return (
        "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project "
        f"AND ({text.strip()}) ORDER BY [System.Id]"
    )


class WorkItemQueries:
    """Answers saved queries for one call of `run_queries`."""

    def __init__(
        self,
        client: AzureDevOpsClient,
        state_category: StateCategory,
        learn_states: LearnStates,
        *,
        workers: int = 4,
    ) -> None:
        self.client = client
        self.state_category = state_category
        self.learn_states = learn_states
        self.workers = workers
        self._known: dict[str, FieldRef] | None = None
        self._lock = threading.Lock()

    def run(self, queries: Sequence[TrackerQuery]) -> dict[str, Answer]:
        return run_all(queries, self.answer, workers=self.workers, name="ado-queries")

    def answer(self, query: AskedQuery) -> Answer:
        if not query.text:
            return QueryRefused("the query is empty")
        if _LINK_QUERY.search(query.text):
            return QueryRefused(
                "a link query (FROM WorkItemLinks) answers pairs of work items; measure a flat "
                "query (FROM WorkItems)"
            )
        try:
            field = self._field(query.field) if query.want == "items" else None
            ids = self._ids(query.text)
            if query.want == "count":
                return QueryAnswer(len(ids))
            return self._items(ids, field)
        except ConnectorError as refused:  # UnknownFieldError included
            return QueryRefused(str(refused))

    def _field(self, name: str | None) -> str | None:
        """The reference name of a configured field name (None: no field asked)."""
        if name is None:
            return None
        with self._lock:  # one field list for every query of the call
            if self._known is None:
                self._known = catalog_index(self.client.fields())
            known = self._known
        found = find_field(known, name)
        if found is None:
            raise UnknownFieldError("query field", name, close_matches(name, known))
        return found.reference_name

    def _ids(self, text: str) -> list[int]:
        try:
            answer = self.client.query_ids(flat_query(text), top=None, time_precision=False)
        except ResultCapExceeded:
            raise ConnectorError(
                f"the query matches more than {WIQL_RESULT_CAP:,} work items, the most one WIQL "
                "query may return (VS402337); narrow it"
            ) from None
        except ServiceRefused as refused:
            raise ConnectorError(f"Azure DevOps rejected the query: {refused.message}") from None
        return list(dict.fromkeys(answer.ids))

    def _items(self, ids: list[int], field: str | None) -> QueryAnswer:
        fields = [*MATCH_FIELDS, field] if field else list(MATCH_FIELDS)
        matches: list[QueryMatch] = []
        for batch in chunked(ids, BATCH_SIZE):
            raw_items = self.client.work_items_batch(batch, fields=fields, expand=None)
            with self._lock:  # one states read per type, whichever query meets it first
                self.learn_states(raw_items)
            matches += [self._match(raw, field) for raw in raw_items]
        return QueryAnswer(len(matches), matches=tuple(matches))

    def _match(self, raw: Mapping[str, Any], field: str | None) -> QueryMatch:
        values = raw.get("fields") or {}
        work_item_type = values.get("System.WorkItemType")
        state = values.get("System.State")
        category = (
            self.state_category(work_item_type, state)
            if isinstance(work_item_type, str) and isinstance(state, str)
            else None
        )
        value = None
        if field is not None:
            value, _ = number_or_problem(values.get(field))
        return QueryMatch(str(raw.get("id")), category is StatusCategory.DONE, value)
