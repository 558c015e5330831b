"""Key Result queries: asked once per run, one batch per connection, answers turned into the
measures' outcomes.

Every Key Result with a query measure names its query per connection. Each connection gets one
`run_queries` call holding all its Key Results' queries, so a run asks each tracker for its
measures once, whatever the number of Key Results (the connector batches further where its
tracker allows). A `count` measure asks for the count only (the cheapest request); `sum` and
`share_done` need the matched items' done-ness or values. Given the run's pulled items (a
`StoreView`), a `share_done` measure, and a `sum` whose field the store holds for every item
(a WSJF input), asks for the keys of its matches only and reads the rest from the store; the
matches the store lacks cost one follow-up query per connection
(`spm_sync.pipeline.portfolio_keys`).
A `sum` of any other field asks for the items.

Connectors know nothing about OKRs: the query's `ident` is the Key Result id, and the answer is
converted here (`QueryAnswer` -> `QueryResult`/`QueryCount`, `QueryRefused` -> `QueryFailed`).
A connection that is not usable this run, a connector that cannot answer queries, a batch that
raises, or an ident left unanswered gives the Key Results concerned a `QueryFailed` with the
reason: never a crash, never last run's figure passed off as this run's.

A Key Result querying several connections pools the answers: counts and items are added, and
any failure fails the Key Result (a partial sum would look like a real one).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from connectors.base import (
    QueryAnswer,
    QueryingConnector,
    QueryRefused,
    TrackerQuery,
)
from spm_sync.config.okr_measures import KeyResultExtras
from spm_sync.core.domain import ItemRef
from spm_sync.core.errors import describe
from spm_sync.core.results_portfolio import QueryRun
from spm_sync.engines.portfolio.measures import (
    MatchedItem,
    MeasureKind,
    QueryCount,
    QueryFailed,
    QueryOutcome,
    QueryResult,
)
from spm_sync.pipeline.portfolio_keys import StoreView, completed

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class QuerySource:
    """A connection the queries may go to: its connector (None when it could not be made) and
    why it is not usable this run (None when it is)."""

    connector: object | None
    unusable: str | None = None


def tracker_query(
    kr_id: str,
    text: str,
    extras: KeyResultExtras,
    connection: str = "",
    store: StoreView | None = None,
) -> TrackerQuery:
    """What the Key Result asks `connection`: a count, the keys (its done-ness and values are
    in `store`; a sum's field rides along for the follow-up) or the items."""
    kind = extras.measure.kind
    if kind is MeasureKind.COUNT:
        return TrackerQuery(kr_id, text, "count")
    field = extras.measure.field if kind is MeasureKind.SUM else None
    if store is None or connection not in store.languages:
        return TrackerQuery(kr_id, text, "items", field)
    if field is None or store.attribute_of(connection, field) is not None:
        return TrackerQuery(kr_id, text, "keys", field)
    return TrackerQuery(kr_id, text, "items", field)


def batches(
    measured: Mapping[str, KeyResultExtras], store: StoreView | None = None
) -> dict[str, list[TrackerQuery]]:
    """Connection -> its queries, one per Key Result that queries it (Key Results in order)."""
    found: dict[str, list[TrackerQuery]] = {}
    for kr_id, extras in measured.items():
        if extras.measure.kind is MeasureKind.MANUAL:
            continue
        for connection, text in extras.queries.items():
            query = tracker_query(kr_id, text, extras, connection, store)
            found.setdefault(connection, []).append(query)
    return found


Answer = QueryAnswer | QueryRefused | QueryFailed


def ask(
    batches: Mapping[str, Sequence[TrackerQuery]],
    sources: Mapping[str, QuerySource],
    store: StoreView | None = None,
) -> tuple[dict[str, dict[str, Answer]], list[QueryRun]]:
    """Each connection's answers by Key Result id, and what each batch did. Keys queries need
    the `store` they were planned with."""
    answers: dict[str, dict[str, Answer]] = {}
    runs: list[QueryRun] = []
    for connection, queries in batches.items():
        got, error = _one_batch(connection, queries, sources.get(connection), store)
        answers[connection] = got
        failed = sum(1 for a in got.values() if not isinstance(a, QueryAnswer))
        runs.append(
            QueryRun(connection=connection, queries=len(queries), failed=failed, error=error)
        )
    return answers, runs


def _one_batch(
    connection: str,
    queries: Sequence[TrackerQuery],
    source: QuerySource | None,
    store: StoreView | None,
) -> tuple[dict[str, Answer], str | None]:
    reason = _cannot_ask(connection, source)
    if reason is None and source is not None:
        connector = source.connector
        assert isinstance(connector, QueryingConnector)
        try:
            raw = connector.run_queries(list(queries))
            if store is not None and any(query.want == "keys" for query in queries):
                raw = completed(connection, queries, raw, store, connector)
        except Exception as error:  # one failing batch must not stop the run
            log.warning("key result queries of %s failed", connection, exc_info=True)
            reason = f"the queries of {connection} failed: {describe(error)}"
        else:
            return {q.ident: _checked(raw.get(q.ident), q, connection) for q in queries}, None
    failed = QueryFailed(reason or f"{connection} cannot answer queries")
    return {query.ident: failed for query in queries}, reason


def _cannot_ask(connection: str, source: QuerySource | None) -> str | None:
    if source is None:
        return f"no connection named {connection!r}"
    if source.unusable is not None:
        return f"{connection} is not usable this run ({source.unusable})"
    if source.connector is None or not isinstance(source.connector, QueryingConnector):
        return f"the {connection} connector cannot run queries"
    return None


def _checked(answer: object, query: TrackerQuery, connection: str) -> Answer:
    if isinstance(answer, QueryRefused):
        return QueryFailed(f"{connection} refused it: {answer.reason}")
    if not isinstance(answer, QueryAnswer):
        return QueryFailed(f"{connection} gave no answer to it")
    if query.want != "count" and answer.matches is None:
        return QueryFailed(f"{connection} answered with a count only; the items were needed")
    return answer


def outcomes(
    measured: Mapping[str, KeyResultExtras], answers: Mapping[str, Mapping[str, Answer]]
) -> dict[str, QueryOutcome]:
    """Each queried Key Result's outcome, its connections' answers pooled."""
    found: dict[str, QueryOutcome] = {}
    for kr_id, extras in measured.items():
        if extras.measure.kind is MeasureKind.MANUAL:
            continue
        parts = [
            (connection, answers.get(connection, {}).get(kr_id)) for connection in extras.queries
        ]
        found[kr_id] = _pooled(extras.measure.kind, parts)
    return found


def _pooled(kind: MeasureKind, parts: Sequence[tuple[str, Answer | None]]) -> QueryOutcome:
    failures = [
        answer.reason if isinstance(answer, QueryFailed | QueryRefused) else f"{c}: not asked"
        for c, answer in parts
        if not isinstance(answer, QueryAnswer)
    ]
    if failures:
        return QueryFailed("; ".join(failures))
    answered = [(c, a) for c, a in parts if isinstance(a, QueryAnswer)]
    if kind is MeasureKind.COUNT:
        return QueryCount(
            sum(a.count for _, a in answered), any(a.approximate for _, a in answered)
        )
    matched: list[MatchedItem] = []
    for connection, answer in answered:
        for match in answer.matches or ():
            ref: ItemRef = (connection, match.key)
            matched.append(MatchedItem(ref, match.done, match.value))
    return QueryResult(tuple(matched))
