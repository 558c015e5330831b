"""Saved WIQL queries on Azure DevOps, answered with the fewest requests.

Requests per distinct query (see `connectors.tracker_queries` for what counts as distinct):
- `want="count"`: one flat WIQL query (`POST {org}/{project}/_apis/wit/wiql`); it answers ids
  only, so the count is the number of ids, exact;
- `want="keys"`: the same query; its ids are the keys (nothing is read);
- `want="items"`: the same query; then the matched ids of all items queries of the call
  together, each id once, are read with `workitemsbatch` per 200 ids with `System.WorkItemType`,
  `System.State` and the resolved fields (so forty measures of thirty items each cost six
  reads, not forty); done means the state's category is Completed (or
  Removed: the categories are the pull's, `connectors.azure_devops_mapping`, read per type only
  for a custom state);
- the field list (`GET _apis/wit/fields`) once per call when some query names a field the run
  has not met yet (the pull's scope query resolves the standard and configured fields through
  its columns), to resolve names like the WSJF inputs and to suggest close ones for an unknown
  name.

The text is either a whole flat query (`SELECT ... FROM WorkItems WHERE ...`), sent as written
(without a `[System.TeamProject] = @project` condition it counts every project of the
organization, as it would in the web portal), or a condition, asked as
`[System.TeamProject] = @project AND (<condition>)`: it counts what it says in the
connection's project, not only the work item types and areas the connection syncs (a measure
may count bugs where the sync reads epics and features). Link queries
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from connectors.azure_devops_client import AzureDevOpsClient, ServiceRefused
from connectors.azure_devops_fields import (
    FieldMap,
    FieldRef,
    catalog_index,
    close_matches,
    find_field,
)
from connectors.base import (
    ConnectorError,
    QueryAnswer,
    QueryMatch,
    QueryRefused,
    TrackerQuery,
    UnknownFieldError,
)
from connectors.batches import chunked, completed_in_parallel
from connectors.tracker_queries import (
    Answer,
    AskedQuery,
    each_in_parallel,
    run_all,
    without_order,
)
from connectors.values import number_or_problem
from connectors.wiql_builder import WIQL_RESULT_CAP, ResultCapExceeded
from spm_sync.core.domain import WSJF_INPUTS, StatusCategory

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
    """The WIQL to send for a saved query's text (see the module docstring); a condition's own
    ORDER BY is dropped, as it cannot stand inside the brackets."""
    if _WHOLE_QUERY.match(text):
        return text.strip()
    condition = without_order(text)
    return (
        "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project "
        f"AND ({condition}) ORDER BY [System.Id]"
    )


class WorkItemQueries:
    """Answers saved queries for one call of `run_queries`, in three steps: the field names,
    the WIQL of every distinct query, then one read of the matched work items of every items
    query together, 200 a batch: a work item two measures match is read once, and the small
    answers of many measures share batches instead of costing one read each."""

    def __init__(
        self,
        client: AzureDevOpsClient,
        state_category: StateCategory,
        learn_states: LearnStates,
        *,
        workers: int = 4,
        known_fields: Sequence[FieldRef] = (),
    ) -> None:
        self.client = client
        self.state_category = state_category
        self.learn_states = learn_states
        self.workers = workers
        self.known_fields = known_fields
        """Fields the run already resolved (the pull's scope query columns): a name among them
        costs no field list."""

    def run(self, queries: Sequence[TrackerQuery]) -> dict[str, Answer]:
        return run_all(queries, self.answer_all)

    def answer_all(self, distinct: Sequence[AskedQuery]) -> dict[AskedQuery, Answer]:
        fields = self._fields({q.field for q in distinct if q.want == "items" and q.field})
        checked = {query: self._refusal(query, fields) for query in distinct}
        texts = list(dict.fromkeys(q.text for q, refused in checked.items() if refused is None))
        by_text = each_in_parallel(texts, self._ids, workers=self.workers, name="ado-queries")
        found = {query: refused or by_text[query.text] for query, refused in checked.items()}
        wanted = [
            item_id
            for query, ids in found.items()
            if query.want == "items" and isinstance(ids, list)
            for item_id in ids
        ]
        references = sorted({ref for ref in fields.values() if isinstance(ref, str)})
        raw_items: dict[int, Mapping[str, Any]] = {}
        unread: str | None = None
        try:
            raw_items = self._read(list(dict.fromkeys(wanted)), references)
        except ConnectorError as failed:
            unread = str(failed)  # every items query shared the reads, so each is refused
        answers: dict[AskedQuery, Answer] = {}
        for query, ids in found.items():
            if isinstance(ids, QueryRefused):
                answers[query] = ids
            elif query.want == "count":
                answers[query] = QueryAnswer(len(ids))
            elif query.want == "keys":
                answers[query] = QueryAnswer(len(ids), keys=tuple(str(i) for i in ids))
            elif unread is not None:
                answers[query] = QueryRefused(unread)
            else:
                reference = fields.get(query.field) if query.field else None
                assert not isinstance(reference, QueryRefused)
                matches = [self._match(raw_items[i], reference) for i in ids if i in raw_items]
                answers[query] = QueryAnswer(len(matches), matches=tuple(matches))
        return answers

    def _fields(self, names: set[str | None]) -> dict[str | None, str | QueryRefused]:
        """Reference names of the asked fields: from the fields the run knows, else from one
        field list (none read when every name is known); an unknown name maps to its refusal,
        with close matches."""
        known = catalog_index(self.known_fields)
        if any(find_field(known, name) is None for name in names if name):
            try:
                known = catalog_index(self.client.fields())
            except ConnectorError as failed:
                return {name: QueryRefused(str(failed)) for name in names}
        resolved: dict[str | None, str | QueryRefused] = {}
        for name in sorted(n for n in names if n):
            found = find_field(known, name)
            if found is None:
                unknown = UnknownFieldError("query field", name, close_matches(name, known))
                resolved[name] = QueryRefused(str(unknown))
            else:
                resolved[name] = found.reference_name
        return resolved

    def _refusal(
        self, query: AskedQuery, fields: Mapping[str | None, str | QueryRefused]
    ) -> QueryRefused | None:
        """Why a query is refused before it is sent, if it is."""
        if not query.text:
            return QueryRefused("the query is empty")
        if _LINK_QUERY.search(query.text):
            return QueryRefused(
                "a link query (FROM WorkItemLinks) answers pairs of work items; measure a flat "
                "query (FROM WorkItems)"
            )
        field = fields.get(query.field) if query.want == "items" and query.field else None
        return field if isinstance(field, QueryRefused) else None

    def _ids(self, text: str) -> list[int] | QueryRefused:
        """The ids a query text matches (one WIQL request, whatever fields its queries want)."""
        try:
            answer = self.client.query_ids(flat_query(text), top=None, time_precision=False)
        except ResultCapExceeded:
            return QueryRefused(
                f"the query matches more than {WIQL_RESULT_CAP:,} work items, the most one WIQL "
                "query may return (VS402337); narrow it"
            )
        except ServiceRefused as refused:
            return QueryRefused(f"Azure DevOps rejected the query: {refused.message}")
        except ConnectorError as failed:
            return QueryRefused(str(failed))
        return list(dict.fromkeys(answer.ids))

    def _read(self, ids: list[int], references: Sequence[str]) -> dict[int, Mapping[str, Any]]:
        """The work items of `ids` with what a match needs, batches in parallel; deleted ones
        are left out. State categories of types with a custom state are read after."""
        fields = list(dict.fromkeys([*MATCH_FIELDS, *references]))
        tasks = (
            partial(self.client.work_items_batch, batch, fields=fields, expand=None)
            for batch in chunked(ids, BATCH_SIZE)
        )
        raw_items: dict[int, Mapping[str, Any]] = {}
        for batch in completed_in_parallel(tasks, workers=self.workers, name="ado-query-reads"):
            raw_items.update((raw["id"], raw) for raw in batch if isinstance(raw.get("id"), int))
        self.learn_states(raw_items.values())
        return raw_items

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


def stored_field(known_fields: Sequence[FieldRef], configured: FieldMap, name: str) -> str | None:
    """The WSJF input of `WorkItem` whose configured field `name` names (by reference or display
    name), among the fields the run resolved already; None for another field or one the run
    has not met (`connectors.base.StoredFieldsConnector`: no request to find out)."""
    found = find_field(catalog_index(known_fields), name)
    if found is None:
        return None
    return next(
        (i for i in WSJF_INPUTS if getattr(configured, i) == found.reference_name), None
    )
