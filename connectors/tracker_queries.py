"""What both trackers' saved-query runners share: asking each distinct query once, several at a
time, and answering every caller's ident.

Saved queries repeat: two measures may count the same JQL, or one counts what another lists.
A query is asked once per distinct (text, want, field); a count whose text some `want="items"`
query also asks is taken from that answer (its exact length), so it costs nothing more. The
distinct queries run on `workers` threads, like the connectors' batch reads: each is at least
one round trip, and nothing orders them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import partial
from typing import NamedTuple, TypeVar

from connectors.base import QueryAnswer, QueryRefused, QueryWant, TrackerQuery
from connectors.batches import completed_in_parallel

Answer = QueryAnswer | QueryRefused
_ORDER_BY = re.compile(r"""\s*\border\s+by\s+(?:[^"']|"[^"]*"|'[^']*')*$""", re.IGNORECASE)
K = TypeVar("K")
T = TypeVar("T")


class AskedQuery(NamedTuple):
    """One distinct query: its text without surrounding blanks, what is wanted and the field
    (None for a count, which needs no field)."""

    text: str
    want: QueryWant
    field: str | None


def asked(query: TrackerQuery) -> AskedQuery:
    if query.want == "count":
        return AskedQuery(query.text.strip(), "count", None)
    field = query.field.strip() if query.field and query.field.strip() else None
    return AskedQuery(query.text.strip(), "items", field)


def without_order(text: str) -> str:
    """A JQL query or WIQL condition without its trailing ORDER BY, which cannot stand where
    the runners put the text (inside brackets, before their own order); an "order by" inside a
    quoted value stays."""
    return _ORDER_BY.sub("", text).strip()


def plan(queries: Sequence[TrackerQuery]) -> tuple[list[AskedQuery], dict[str, AskedQuery]]:
    """The distinct queries to ask, and for each ident the query that answers it (a count may
    be answered by an items query of the same text)."""
    listed: dict[str, AskedQuery] = {}
    for query in queries:
        wanted = asked(query)
        if wanted.want == "items":
            listed.setdefault(wanted.text, wanted)
    answered_by: dict[str, AskedQuery] = {}
    for query in queries:
        wanted = asked(query)
        if wanted.want == "count" and wanted.text in listed:
            wanted = listed[wanted.text]
        answered_by[query.ident] = wanted
    distinct = list(dict.fromkeys(answered_by.values()))
    return distinct, answered_by


def run_all(
    queries: Sequence[TrackerQuery],
    answer_all: Callable[[Sequence[AskedQuery]], dict[AskedQuery, Answer]],
) -> dict[str, Answer]:
    """Every ident's answer. `answer_all` answers distinct queries (all of them), turning what
    the tracker refuses into `QueryRefused`; anything else it raises is a programming error
    and ends the call. A count that was to be read off an items query which was refused (for
    its field, say) is then asked on its own."""
    distinct, answered_by = plan(queries)
    answers = answer_all(distinct) if distinct else {}
    by_ident = {query.ident: query for query in queries}
    orphans = list(
        dict.fromkeys(
            asked(by_ident[ident])
            for ident, wanted in answered_by.items()
            if by_ident[ident].want == "count"
            and wanted.want == "items"
            and isinstance(answers[wanted], QueryRefused)
        )
    )
    if orphans:
        answers.update(answer_all(orphans))
        for ident, query in by_ident.items():
            if asked(query) in orphans:
                answered_by[ident] = asked(query)
    return {
        ident: _as_asked(by_ident[ident], answers[wanted]) for ident, wanted in answered_by.items()
    }


def each_in_parallel(
    distinct: Sequence[K],
    answer: Callable[[K], T],
    *,
    workers: int,
    name: str,
) -> dict[K, T]:
    """`answer` of each query (or query text), on `workers` threads. The first runs alone: a
    client's one-time setup (Azure DevOps' resource discovery) then happens once, not once per
    thread."""
    if not distinct:
        return {}
    first, rest = distinct[0], distinct[1:]
    answers = {first: answer(first)}

    def ask(wanted: K) -> tuple[K, T]:
        return wanted, answer(wanted)

    tasks = (partial(ask, wanted) for wanted in rest)
    answers.update(completed_in_parallel(tasks, workers=max(1, workers), name=name))
    return answers


def _as_asked(query: TrackerQuery, answer: Answer) -> Answer:
    """A count answered by an items query gets the count only (exact: every match was read)."""
    if query.want == "count" and isinstance(answer, QueryAnswer) and answer.matches is not None:
        return QueryAnswer(answer.count, answer.approximate)
    return answer
