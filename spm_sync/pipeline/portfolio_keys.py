"""Key Result query answers completed from the stored items: done-ness and values read where the
run already holds them, the tracker asked only about the rest.

A `share_done` measure needs each match's done-ness, a `sum` measure each match's number. When
the summed field is one the store keeps for every item (a WSJF input: the connection's
`stored_field`), both are in the items this run pulled, so the measure asks the tracker for
the keys of its matches only (`want="keys"`: Jira search pages of 5,000 keys, one Azure DevOps
WIQL query) instead of every match with its status (pages of 100 on Jira Cloud, reads of 200
on Azure DevOps).

Matches the store does not hold (outside the sync scope, or created since the pull) are read
from the tracker after all: one follow-up `want="items"` query per connection for all of them
(`key in (...)` / `[System.Id] IN (...)`, split past `KEYS_PER_QUERY` keys), and one per
further summed field when Key Results of the connection sum different fields. So the answer
never depends on the scope. A follow-up the tracker refuses fails only the Key Results that
needed it, with the reason; a key it does not return (deleted or hidden since) is left out, as
the tracker would leave it out of the query now.

The store's done is the pull's status category (Jira's `statusCategory` done, Azure DevOps'
Completed/Removed state category), the same rule the connectors apply to a query's matches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import count
from typing import Literal

from connectors.base import QueryAnswer, QueryMatch, QueryRefused, TrackerQuery
from connectors.tracker_queries import keys_queries
from spm_sync.core.domain import ItemRef, StatusCategory, WorkItem
from spm_sync.core.errors import describe

log = logging.getLogger(__name__)

QueryLanguage = Literal["jql", "wiql"]
RawAnswers = Mapping[str, QueryAnswer | QueryRefused]


@dataclass(frozen=True)
class StoreView:
    """What the stage knows without asking: the items this run pulled, each connection's
    query language (a connection without one is asked for items, as no follow-up could be
    written), and which `WorkItem` attribute holds a field a connection's measure sums
    (`attribute_of(connection, field)`, None when none does)."""

    items: Mapping[ItemRef, WorkItem]
    languages: Mapping[str, QueryLanguage]
    attribute_of: Callable[[str, str], str | None]


def completed(
    connection: str,
    queries: Sequence[TrackerQuery],
    raw: RawAnswers,
    store: StoreView,
    connector: object,
) -> dict[str, QueryAnswer | QueryRefused]:
    """`raw` with every keys answer turned into an items answer: matches from the store where
    it holds them, from follow-up queries otherwise. A keys query's `field` names the summed
    field (None for `share_done`); the connector ignored it, the follow-up reads it. Every
    follow-up query reads done-ness, so a `share_done` measure takes its missing matches from
    whichever was asked."""
    answers = dict(raw)
    keyed = {
        query.ident: (query.field, answer)
        for query in queries
        if query.want == "keys"
        and isinstance(answer := raw.get(query.ident), QueryAnswer)
        and answer.keys is not None
    }
    missing = {
        ident: [key for key in answer.keys or () if (connection, key) not in store.items]
        for ident, (_, answer) in keyed.items()
    }
    short = [ident for ident, keys in missing.items() if keys]
    summed = [keyed[ident][0] for ident in short if keyed[ident][0] is not None]
    fetched = _follow_up(
        list(dict.fromkeys(summed)) or [None],
        list(dict.fromkeys(key for ident in short for key in missing[ident])),
        language=store.languages[connection],
        connector=connector,
        taken=set(raw),
    )
    for ident, (field, answer) in keyed.items():
        read = _read_for(fetched, field) if missing[ident] else {}
        if isinstance(read, QueryRefused):
            answers[ident] = QueryRefused(
                f"reading its matches outside the synced items ({len(missing[ident])}) "
                f"failed: {read.reason}"
            )
            continue
        attribute = store.attribute_of(connection, field) if field else None
        matches = (
            _from_store(store.items[(connection, key)], key, attribute)
            if (connection, key) in store.items
            else _without_value(read.get(key), field)
            for key in answer.keys or ()
        )
        found = tuple(match for match in matches if match is not None)
        answers[ident] = QueryAnswer(len(found), matches=found)
    return answers


def _read_for(fetched: Mapping[str | None, Fetched], field: str | None) -> Fetched:
    """The follow-up answer that serves a measure: its field's, or for `share_done` (no field)
    the first, as every follow-up says what is done."""
    if field is not None:
        return fetched[field]
    return next(iter(fetched.values()))


def _without_value(match: QueryMatch | None, field: str | None) -> QueryMatch | None:
    """A follow-up match as its measure asked: no value when it sums no field (the follow-up
    read another measure's field)."""
    return match._replace(value=None) if match is not None and field is None else match


def _from_store(item: WorkItem, key: str, attribute: str | None) -> QueryMatch:
    value = getattr(item, attribute) if attribute is not None else None
    return QueryMatch(key, item.status_category is StatusCategory.DONE, value)


Fetched = dict[str, QueryMatch] | QueryRefused


def _follow_up(
    fields: Sequence[str | None],
    keys: Sequence[str],
    *,
    language: QueryLanguage,
    connector: object,
    taken: set[str],
) -> dict[str | None, Fetched]:
    """Per field a follow-up reads (None: done-ness only), the missing matches by key, or why
    they could not be read. All of a connection's missing keys go into each field's queries
    (usually one field, so one query), and all of them into one call of the connector."""
    if not keys:
        return {}
    texts = keys_queries(language, keys)
    fresh = (ident for n in count(1) if (ident := f"follow-up {n}") not in taken)
    asked = {
        field: [TrackerQuery(next(fresh), text, "items", field) for text in texts]
        for field in fields
    }
    run_queries = getattr(connector, "run_queries", None)
    if run_queries is None:
        return dict.fromkeys(fields, QueryRefused("the connector cannot run queries"))
    try:
        raw: RawAnswers = run_queries([query for group in asked.values() for query in group])
    except Exception as error:  # one failing follow-up must not stop the run
        log.warning("reading Key Result matches outside the scope failed", exc_info=True)
        return dict.fromkeys(fields, QueryRefused(describe(error)))
    return {field: _pooled(group, raw) for field, group in asked.items()}


def _pooled(group: Sequence[TrackerQuery], raw: RawAnswers) -> Fetched:
    matches: dict[str, QueryMatch] = {}
    for query in group:
        answer = raw.get(query.ident)
        if isinstance(answer, QueryRefused):
            return answer
        if not isinstance(answer, QueryAnswer) or answer.matches is None:
            return QueryRefused("the tracker gave no items")
        matches.update((match.key, match) for match in answer.matches)
    return matches
