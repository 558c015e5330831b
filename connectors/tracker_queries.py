"""What both trackers' saved-query runners share: asking each distinct query once, several at a
time, and answering every caller's ident.

Saved queries repeat: two measures may count the same JQL, or one counts what another lists.
A query is asked once per distinct (text, want, field). What one answer holds serves the
poorer wants of the same text: a count whose text a `want="keys"` or `want="items"` query also
asks is taken from that answer (its exact length), a keys query from an items query's matches,
so they cost nothing more. The distinct queries run on `workers` threads, like the connectors'
batch reads: each is at least one round trip, and nothing orders them.

`keys_queries` writes the queries a caller asks for given items (matches of a keys query it
found nothing about in its own data): JQL `key in (...)`, a flat WIQL query `[System.Id] IN
(...)` (whole, so not restricted to the connection's project, as the query that matched them
may not have been), so many keys a text that one text stays far below the trackers' length
limits.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import partial
from typing import Literal, NamedTuple, TypeVar

from connectors.base import QueryAnswer, QueryRefused, QueryWant, TrackerQuery
from connectors.batches import completed_in_parallel

Answer = QueryAnswer | QueryRefused
_ORDER_BY = re.compile(r"""\s*\border\s+by\s+(?:[^"']|"[^"]*"|'[^']*')*$""", re.IGNORECASE)
K = TypeVar("K")
T = TypeVar("T")
RICHNESS: dict[QueryWant, int] = {"count": 0, "keys": 1, "items": 2}
"""What an answer holds: an items answer serves a keys or count query of its text, a keys
answer a count."""
KEYS_PER_QUERY = 1000
"""Keys per `keys_conditions` text: ~10 characters each in JQL, ~7 in WIQL, so a text stays
near 10,000 characters, a third of the WIQL limit (32K characters, "WIQL queries ... must not
exceed 32K characters") and well within what Jira accepts in a POST body."""
_ISSUE_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]*-[0-9]+")


class AskedQuery(NamedTuple):
    """One distinct query: its text without surrounding blanks, what is wanted and the field
    (None for a count, which needs no field)."""

    text: str
    want: QueryWant
    field: str | None


def asked(query: TrackerQuery) -> AskedQuery:
    if query.want != "items":
        return AskedQuery(query.text.strip(), query.want, None)
    field = query.field.strip() if query.field and query.field.strip() else None
    return AskedQuery(query.text.strip(), "items", field)


def without_order(text: str) -> str:
    """A JQL query or WIQL condition without its trailing ORDER BY, which cannot stand where
    the runners put the text (inside brackets, before their own order); an "order by" inside a
    quoted value stays."""
    return _ORDER_BY.sub("", text).strip()


def plan(queries: Sequence[TrackerQuery]) -> tuple[list[AskedQuery], dict[str, AskedQuery]]:
    """The distinct queries to ask, and for each ident the query that answers it (a count or
    keys query may be answered by a richer query of the same text: the first items query of
    that text, else its keys query)."""
    richest: dict[str, AskedQuery] = {}
    for query in queries:
        wanted = asked(query)
        known = richest.get(wanted.text)
        if known is None or RICHNESS[wanted.want] > RICHNESS[known.want]:
            richest[wanted.text] = wanted
    answered_by: dict[str, AskedQuery] = {}
    for query in queries:
        wanted = asked(query)
        if wanted.want != "items":
            wanted = richest[wanted.text]
        answered_by[query.ident] = wanted
    distinct = list(dict.fromkeys(answered_by.values()))
    return distinct, answered_by


def run_all(
    queries: Sequence[TrackerQuery],
    answer_all: Callable[[Sequence[AskedQuery]], dict[AskedQuery, Answer]],
) -> dict[str, Answer]:
    """Every ident's answer. `answer_all` answers distinct queries (all of them), turning what
    the tracker refuses into `QueryRefused`; anything else it raises is a programming error
    and ends the call. A count or keys query that was to be read off a richer query which was
    refused (an items query for its field, say) is then asked on its own."""
    distinct, answered_by = plan(queries)
    answers = answer_all(distinct) if distinct else {}
    by_ident = {query.ident: query for query in queries}
    orphans = list(
        dict.fromkeys(
            asked(by_ident[ident])
            for ident, wanted in answered_by.items()
            if asked(by_ident[ident]) != wanted and isinstance(answers[wanted], QueryRefused)
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


def keys_queries(language: Literal["jql", "wiql"], keys: Sequence[str]) -> list[str]:
    """Query texts that match exactly the items of `keys` (each once), at most
    `KEYS_PER_QUERY` keys a text (see the module docstring). A key that cannot be one of the
    tracker's (it would only make the query fail) is left out."""
    if language == "jql":
        usable = [f'"{key}"' for key in dict.fromkeys(keys) if _ISSUE_KEY.fullmatch(key)]
        template = "key in ({})"
    else:
        usable = [key for key in dict.fromkeys(keys) if key.isascii() and key.isdigit()]
        template = "SELECT [System.Id] FROM WorkItems WHERE [System.Id] IN ({})"
    return [
        template.format(", ".join(usable[start : start + KEYS_PER_QUERY]))
        for start in range(0, len(usable), KEYS_PER_QUERY)
    ]


def _as_asked(query: TrackerQuery, answer: Answer) -> Answer:
    """A count or keys query answered by a richer one gets what it asked for only (its count
    exact: every match was listed)."""
    if not isinstance(answer, QueryAnswer) or query.want == "items":
        return answer
    listed = (
        tuple(match.key for match in answer.matches) if answer.matches is not None else answer.keys
    )
    if query.want == "count" and listed is not None:
        return QueryAnswer(answer.count, answer.approximate)
    if query.want == "keys" and answer.matches is not None:
        return QueryAnswer(answer.count, keys=listed)
    return answer
