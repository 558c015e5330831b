"""The contract every tracker connector fulfils, and the numbers it reports about itself.

Connectors know tracker APIs and the normalized `WorkItem`; they never see OKRs or WSJF.
"""

from __future__ import annotations

import difflib
import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol, runtime_checkable

from spm_sync.domain import ConnectionPlan, WorkItem, WriteResult

if TYPE_CHECKING:
    from spm_sync.flow.history import StatusChange

RankKind = Literal["lexorank", "numeric"]


class ConnectorError(Exception):
    """A problem the user can fix (bad URL, auth, unknown field name, scope query rejected).

    The message is meant for the user; the pipeline reports it for this connection and goes on
    with the others.
    """


class UnknownFieldError(ConnectorError):
    """A configured field name does not exist (or is ambiguous) on the tracker."""

    def __init__(self, setting: str, name: str, candidates: list[str]) -> None:
        hint = f"; close matches: {', '.join(candidates)}" if candidates else ""
        super().__init__(f"{setting}: field {name!r} does not exist on the tracker{hint}")
        self.setting = setting
        self.name = name
        self.candidates = candidates


def field_suggestions(wanted: str, labels: Mapping[str, str]) -> list[str]:
    """Up to five suggestions for an unknown field name: how the fields whose names come
    closest to `wanted` are shown, best first, each once. `labels` maps casefolded names (a
    field may have two, e.g. a reference and a display name) to labels."""
    hits = difflib.get_close_matches(wanted.strip().casefold(), list(labels), n=8, cutoff=0.6)
    return list(dict.fromkeys(labels[hit] for hit in hits))[:5]


@dataclass
class RequestStats:
    """Thread-safe request accounting for one connector over one run.

    `by_endpoint` keys look like "POST /rest/api/3/search/jql" with ids replaced by
    placeholders, so the report and the benchmarks can show where the calls went.
    """

    by_endpoint: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    throttled: int = 0
    waited_seconds: float = 0.0
    rate_limit: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def requests(self) -> int:
        with self._lock:  # a counting thread may add an endpoint while we sum
            return sum(self.by_endpoint.values())

    def count(self, endpoint: str) -> None:
        with self._lock:
            self.by_endpoint[endpoint] += 1

    def retried(self, waited: float, throttled: bool) -> None:
        with self._lock:
            self.retries += 1
            self.waited_seconds += waited
            if throttled:
                self.throttled += 1

    def paced(self, waited: float) -> None:
        """A success asked us to slow down (Retry-After on a 200, X-RateLimit-Delay)."""
        with self._lock:
            self.throttled += 1
            self.waited_seconds += waited

    def saw_rate_limit_headers(self, headers: dict[str, str]) -> None:
        with self._lock:
            self.rate_limit.update(headers)

    def as_dict(self) -> dict[str, object]:
        with self._lock:
            by_endpoint = dict(sorted(self.by_endpoint.items()))
            return {
                "requests": sum(by_endpoint.values()),
                "by_endpoint": by_endpoint,
                "retries": self.retries,
                "throttled": self.throttled,
                "waited_seconds": round(self.waited_seconds, 3),
                "rate_limit": dict(self.rate_limit),
            }


@runtime_checkable
class Connector(Protocol):
    """One configured tracker connection.

    `pull(since)` streams items changed at or after `since` (None: everything in scope), paging
    lazily. The caller applies the safety overlap to `since`; the connector converts it to the
    tracker's time zone and precision.

    `scan_keys()` is the cheap id-only scan of the whole scope that finds items deleted or moved
    out of scope since the last full sync.

    `push(plan)` executes one connection's write plan: it checks every item's revision first and
    skips changed items as `conflict`, writes only the planned values, then executes rank moves.
    It yields one `WriteResult` per `PlannedWrite` (including the RANK rows carried by moves).
    This replaces the design's separate `apply`/`rerank`: a single freshness check for both kinds
    of write avoids our own score write being mistaken for a human edit by the rank step.

    `pull_history(changed_keys, cursor)` streams the status changes (flow metrics' input) that
    the store does not hold yet, with the fewest requests the tracker allows: `changed_keys` are
    the keys `pull` yielded in this run (on a full sync, every key in scope), `cursor` is what
    `history_cursor` said after the previous run's history (None the first time). A tracker
    with a per-item changelog (Jira) reads the history of `changed_keys` only, so a run that
    pulled nothing asks nothing; one with a project-wide revision feed (Azure DevOps reporting
    revisions) continues from `cursor` and may ignore `changed_keys`. Changes may repeat ones
    already stored (the store keeps one row per change). Once the iterator is exhausted,
    `history_cursor` holds where the next run continues (None for trackers without one); a
    history pull that fails halfway leaves it unchanged, so the next run reads again.
    """

    name: str
    rank_kind: RankKind
    stats: RequestStats
    warnings: list[str]

    def pull(self, since: datetime | None) -> Iterator[WorkItem]: ...

    def scan_keys(self) -> set[str]: ...

    def pull_history(
        self, changed_keys: Sequence[str], cursor: str | None
    ) -> Iterator[StatusChange]: ...

    @property
    def history_cursor(self) -> str | None: ...

    def push(self, plan: ConnectionPlan) -> Iterator[WriteResult]: ...

    def close(self) -> None: ...


QueryWant = Literal["count", "keys", "items"]


@dataclass(frozen=True, slots=True)
class TrackerQuery:
    """One saved query whose answer some caller measures (a Key Result's measure, for one).

    `ident` is the caller's name for the query and is echoed back untouched; connectors do not
    interpret it. `text` is JQL (Jira) or WIQL (Azure DevOps: a full `SELECT ... WHERE` or only
    the condition). `want="count"` needs only how many items match, so the connector may use
    the tracker's cheapest (possibly approximate) count; `want="keys"` needs the keys of the
    matches and nothing else, for a caller that knows the rest of most matches already (the
    tracker's cheapest listing: Jira search pages of keys only, Azure DevOps the WIQL ids
    alone); `want="items"` needs each match with whether it is done and, when `field` is set,
    that field's number (`field` is a configured field name, resolved like the WSJF input
    fields; a count or a keys query ignores it). Queries are asked once per distinct text, want
    and field; a count or keys query whose text a richer query also asks is read off that
    answer (`connectors.tracker_queries`).
    """

    ident: str
    text: str
    want: QueryWant = "count"
    field: str | None = None


class QueryMatch(NamedTuple):
    """One item a query matched: its key, whether its status is in the done category, and the
    asked-for field's number (None when the item has none or none was asked for)."""

    key: str
    done: bool
    value: float | None = None


@dataclass(frozen=True, slots=True)
class QueryAnswer:
    """A query's answer: how many items matched (`approximate` when the tracker said its count
    is an estimate: Jira Cloud's `search/approximate-count`, which may miss the last minutes'
    edits; Data Center and Azure DevOps counts are exact) and, for `want="items"`, the matches
    themselves, or for `want="keys"` only their keys (in the tracker's order, each once; `count`
    is then their number, exact). The keys are a field of their own, not matches with a made-up
    `done`: an answer that says nothing about done-ness cannot be mistaken for one that does."""

    count: int
    approximate: bool = False
    matches: tuple[QueryMatch, ...] | None = None
    keys: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class QueryRefused:
    """The tracker rejected or could not answer the query; `reason` is one sentence for the
    report (the tracker's own message where it gave one, never a secret). Also what a query
    gets that Azure DevOps cannot answer whole: one matching more than 20,000 work items (the
    WIQL cap; a count stopped at the cap would be a wrong measure, not an estimate)."""

    reason: str


@runtime_checkable
class QueryingConnector(Protocol):
    """A connector that can answer saved queries with the fewest requests its tracker allows:
    at most one request per `want="count"` query (fewer where the tracker batches them), the
    largest pages of keys for `want="keys"`, and the id-then-bulk-fetch path for
    `want="items"`. One failing query never fails the others:
    it is answered with `QueryRefused`. Every ident in `queries` gets an answer."""

    def run_queries(
        self, queries: Sequence[TrackerQuery]
    ) -> dict[str, QueryAnswer | QueryRefused]: ...


@runtime_checkable
class StoredFieldsConnector(Protocol):
    """A connector that can say which normalized `WorkItem` attribute holds a field a query
    names, so a caller holding the pulled items can read the value there instead of asking the
    tracker again.

    `stored_field(name)` resolves `name` as a query's field is resolved (Jira: by name or id
    through the run's field list; Azure DevOps: by reference or display name) and answers the
    WSJF input of `WorkItem` ("business_value", "time_criticality", "risk_reduction",
    "job_size") that the connection's `wsjf_fields` map to that same field, or None: another
    field, an unknown name, or one it cannot resolve without a request. Never raises."""

    def stored_field(self, name: str) -> str | None: ...


@runtime_checkable
class FetchingConnector(Protocol):
    """A connector that can read given items whatever the scope says, with the fewest requests
    its tracker allows (batches of keys, never one request per item).

    Keys the tracker does not return (deleted, not visible, not a key of this tracker) are
    simply left out; the caller compares what it asked with what it got. A failing request
    raises `ConnectorError` like the pull does."""

    def fetch_items(self, keys: Sequence[str]) -> Iterator[WorkItem]: ...
