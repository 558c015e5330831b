"""Bounds on paging that every connector shares: a page budget, and the errors of a tracker
that would page without end.

A tracker that keeps answering "there is more" (a fresh Jira `nextPageToken` with the same
issues, a search that ignores the keyset restriction, a WIQL query that ignores the id window)
would otherwise keep a run pulling the same items for hours and then report it `ok`. Each
pager stops as soon as a page brings nothing new (`PagingLoopError`), and `PageBudget` caps the
requests of one paged read at `limits.max_pages` for a tracker that invents new items forever.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from connectors.base import ConnectorError


class PagingLoopError(ConnectorError):
    """The server handed back a page position or items it already gave us; we stop instead of
    spinning."""


class PagingLimitExceeded(ConnectorError):
    """A paged read needed more requests than `limits.max_pages`."""


@dataclass
class PageBudget:
    """Allows `limit` requests of one paged read; `spend()` before each raises past that."""

    tracker: str
    what: str
    limit: int
    used: int = 0

    def spend(self) -> None:
        if self.used >= self.limit:
            raise PagingLimitExceeded(
                f"{self.tracker} still had more {self.what} after {self.limit:,} "
                "(limits.max_pages); stopped instead of reading pages without end, so the pull "
                "is incomplete"
            )
        self.used += 1


@dataclass
class TokenTrail:
    """The page tokens one paged read has followed. A token that comes back leads through the
    same pages again, forever; `follow` raises `PagingLoopError` with `repeated` (where
    `{token}` is the token) instead."""

    repeated: str
    _followed: set[str] = field(default_factory=set)

    def follow(self, token: str) -> str:
        if token in self._followed:
            raise PagingLoopError(self.repeated.format(token=token))
        self._followed.add(token)
        return token
