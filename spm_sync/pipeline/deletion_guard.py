"""The mass-deletion guard: when the answer of a full sync or deletion scan may mark stored
items deleted.

An empty but valid answer looks exactly like "everything was deleted": a scope typo in the
JQL, a token that lost the Browse permission, an area path renamed, a tracker that answers an
empty page. Applying it would drop the whole portfolio from reports and ranking until the next
scan, with a run that says `ok`. So a scan that would delete more than
`max_deletion_share` of a connection's stored items deletes nothing and the run reports why;
raising the share to 1 for one run accepts a deliberate large deletion.

A share alone would block ordinary churn in a tiny project (1 of 3 items deleted is 33 %), so
up to `SMALL_DELETIONS` deletions always go ahead, unless they would leave the connection
with no item at all: an answer that keeps none of the stored items is never trusted below
a share of 1. A wrong deletion of a few items is cheap to recover from (the next scan that
sees them restores them); a wiped portfolio is not.
"""

from __future__ import annotations

from dataclasses import dataclass

SMALL_DELETIONS = 3
"""Deletions that always go ahead when some of the stored items remain (see above)."""


@dataclass(frozen=True, slots=True)
class DeletionGuard:
    max_share: float
    """0..1: the largest share of the stored items one answer may mark deleted."""
    small: int = SMALL_DELETIONS

    def allows(self, expected: int, missing: int) -> bool:
        """May `missing` of the `expected` stored items be marked deleted?"""
        if missing <= 0 or self.max_share >= 1:
            return True
        if missing >= expected:
            return False  # the answer kept nothing: an empty answer never wipes the store
        return missing <= self.small or missing <= self.max_share * expected + 1e-9
