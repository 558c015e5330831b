"""WIQL for the scope of one Azure DevOps connection, and the id windows that keep every query
under the service's result cap.

A flat WIQL query (`POST {org}/{project}/_apis/wit/wiql`, specs/ado-wit-7.1.json "Wiql_Query By
Wiql") answers ids only, with no continuation token, and fails with HTTP 400 `VS402337: The
number of work items returned exceeds the size limit of 20000` past 20,000 results
(specs/API_NOTES.md; the cap is corroborated by client codebases, not by a vendor page).

How we stay under it: keyset paging. Every query is ordered by `[System.Id]`, restricted to
`[System.Id] > last id seen` and sent with `$top=20000`, so a 25,000-item scope costs two
queries and never meets the cap. Should a server refuse anyway (it ignores `$top`, or its cap is
lower than our page), the answer is split into id windows `(after, up_to]` halved recursively
until each fits. We split by id and not by `[System.ChangedDate]` on purpose: ids are unique and
never change, so the windows are disjoint and a window of N consecutive ids can hold at most N
items (the recursion always ends), whereas an item edited during the sync moves between
ChangedDate windows and could be read twice or not at all.

A server that ignores the id restriction would answer the first page again and again: a query
whose answer holds ids but none inside its window raises `PagingLoopError`, and `max_queries`
(`limits.max_pages`) bounds the queries of one read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from connectors.paging_guard import PageBudget, PagingLoopError
from connectors.settings import AzureDevOpsScope, TransferLimits

WIQL_RESULT_CAP = 20_000
"""Most results one flat WIQL query may return (VS402337 beyond)."""


class ResultCapExceeded(Exception):
    """The service refused a query for returning too many work items (VS402337)."""


@dataclass(frozen=True, slots=True)
class IdWindow:
    """Work item ids in `(after, up_to]`; `up_to=None` leaves the window open upwards."""

    after: int = 0
    up_to: int | None = None

    @property
    def width(self) -> int | None:
        return None if self.up_to is None else self.up_to - self.after

    def halves(self) -> tuple[IdWindow, IdWindow]:
        if self.up_to is None or self.up_to - self.after < 2:
            raise ValueError(f"cannot split {self}")
        middle = self.after + (self.up_to - self.after) // 2
        return IdWindow(self.after, middle), IdWindow(middle, self.up_to)


@dataclass(frozen=True, slots=True)
class WiqlScope:
    """The conditions of a connection's scope, combined with AND (all optional)."""

    work_item_types: tuple[str, ...] = ()
    area_paths: tuple[str, ...] = ()
    where: str | None = None

    @classmethod
    def from_settings(cls, scope: AzureDevOpsScope) -> WiqlScope:
        return cls(tuple(scope.work_item_types), tuple(scope.area_paths), scope.wiql_where)


def quote(text: str) -> str:
    """A WIQL string literal: single quotes, an embedded quote doubled."""
    return "'" + text.replace("'", "''") + "'"


def field_ref(name: str) -> str:
    """`[Name]`. Brackets take reference names and display names alike, spaces included."""
    if not name or "[" in name or "]" in name:
        raise ValueError(f"{name!r} is not a usable field name in WIQL")
    return f"[{name}]"


def wiql_datetime(moment: datetime) -> str:
    """UTC ISO-8601 with milliseconds, as WIQL compares it when `timePrecision=true`.

    A naive datetime is taken as UTC. Truncating to milliseconds only ever moves the bound
    earlier, so a `>=` comparison can include an extra item but never miss one.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def scope_conditions(scope: WiqlScope) -> list[str]:
    conditions = ["[System.TeamProject] = @project"]
    if scope.work_item_types:
        types = ", ".join(quote(name) for name in scope.work_item_types)
        conditions.append(f"[System.WorkItemType] IN ({types})")
    if scope.area_paths:
        areas = " OR ".join(f"[System.AreaPath] UNDER {quote(path)}" for path in scope.area_paths)
        conditions.append(f"({areas})")
    if scope.where and scope.where.strip():
        conditions.append(f"({scope.where.strip()})")
    return conditions


def build_scope_query(
    scope: WiqlScope,
    *,
    select: Sequence[str] = ("System.Id",),
    since: datetime | None = None,
    window: IdWindow = IdWindow(),
) -> str:
    """The flat query of `scope`, optionally changed since `since`, within `window`, by id."""
    conditions = scope_conditions(scope)
    if since is not None:
        conditions.append(f"[System.ChangedDate] >= {quote(wiql_datetime(since))}")
    if window.after > 0:
        conditions.append(f"[System.Id] > {window.after}")
    if window.up_to is not None:
        conditions.append(f"[System.Id] <= {window.up_to}")
    columns = ", ".join(field_ref(name) for name in dict.fromkeys(["System.Id", *select]))
    where = "\n  AND ".join(conditions)
    return f"SELECT {columns}\nFROM WorkItems\nWHERE {where}\nORDER BY [System.Id] ASC"


IdQuery = Callable[[IdWindow], list[int]]
"""Runs the scope query restricted to a window (with `$top` = the page size), ids by id."""


@dataclass
class IdPager:
    """Yields the ids of a scope page by page, each id once, in ascending order.

    `query(window)` runs the scope query for one window and raises `ResultCapExceeded` when the
    service refuses it. `page_size` is the `$top` the query sends and also the cap we assume.
    `queries` counts the WIQL calls made, refused ones included, for tests and benchmarks.
    """

    query: IdQuery
    page_size: int = WIQL_RESULT_CAP
    max_queries: int = TransferLimits().max_pages
    queries: int = field(default=0, init=False)

    def pages(self) -> Iterator[list[int]]:
        after = 0
        while True:
            try:
                ids = self._run(IdWindow(after))
            except ResultCapExceeded:
                yield from self._bounded_pages(after)
                return
            if ids:
                yield ids
            if len(ids) < self.page_size:
                return
            after = ids[-1]

    def _run(self, window: IdWindow) -> list[int]:
        if self.queries >= self.max_queries:
            PageBudget("Azure DevOps", "WIQL pages", self.max_queries, self.queries).spend()
        self.queries += 1
        answered = self.query(window)
        distinct = set(answered)
        if len(distinct) < len(answered):
            # A flat query answers each work item once; repeats would fill `$top` and make us
            # ask for the next window of a server that may not keep to it.
            raise PagingLoopError(
                f"Azure DevOps answered {len(answered):,} ids of which only {len(distinct):,} "
                "differ: it answers ids again; stopping instead of reading the same pages "
                "without end"
            )
        ids = sorted(i for i in distinct if i > window.after)
        if window.up_to is not None:
            ids = [i for i in ids if i <= window.up_to]
        if answered and not ids:
            raise PagingLoopError(
                f"Azure DevOps answered {len(answered):,} ids, none of them in the requested id "
                f"window ({window.after}, {window.up_to or '…'}]: it ignores the window; "
                "stopping instead of reading the same pages without end"
            )
        return ids

    def _bounded_pages(self, after: int) -> Iterator[list[int]]:
        """The server refuses open windows even with `$top`: walk closed windows upwards.

        A window of `page_size` ids always fits; it widens while windows come back sparse, so a
        scope with scattered ids needs few queries, and halves itself when refused.
        """
        width = self.page_size
        while True:
            window = IdWindow(after, after + width)
            found = 0
            for ids in self._split_until_fits(window):
                found += len(ids)
                if ids:
                    yield ids
            after = window.up_to or after
            try:
                rest = self._run(IdWindow(after))
            except ResultCapExceeded:
                if found < self.page_size // 2:
                    width *= 2
                continue
            if rest:
                yield rest
            if len(rest) < self.page_size:
                return
            after = rest[-1]

    def _split_until_fits(self, window: IdWindow) -> Iterator[list[int]]:
        try:
            yield self._run(window)
            return
        except ResultCapExceeded:
            if (window.width or 0) < 2:
                raise
        lower, upper = window.halves()
        yield from self._split_until_fits(lower)
        yield from self._split_until_fits(upper)
