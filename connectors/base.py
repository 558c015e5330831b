"""The contract every tracker connector fulfils, and the numbers it reports about itself.

Connectors know tracker APIs and the normalized `WorkItem`; they never see OKRs or WSJF.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol, runtime_checkable

from spm_sync.core.checks import CheckLine, CheckRequest
from spm_sync.core.domain import ConnectionPlan, RankKind, WorkItem, WriteResult
from spm_sync.core.errors import ReportedError
from spm_sync.core.requests import RequestStats

if TYPE_CHECKING:
    from spm_sync.core.history import StatusChange

class ConnectorError(ReportedError):
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


@runtime_checkable
class CheckingConnector(Protocol):
    """A connector that checks its own tracker for `spm-sync check --online`: sign-in, scope,
    every configured field, the link types the OKR settings follow and, when write-back is on,
    that the tracker accepts what would be written. Nothing is written."""

    def check(self, request: CheckRequest) -> Iterator[CheckLine]: ...
