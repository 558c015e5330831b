"""An item's status changes put in an order whose timestamps can be trusted.

Changes come in the order the tracker recorded them (changelog order). When timestamps
disagree with that order, the statuses decide which one to believe: if each change leaves the
status the one before it entered, the recorded order is right and a timestamp that goes
backwards is clock skew (clamped to the change before); otherwise the recorded order is not
the real one and the changes are sorted by time. Changes dated before the item's creation are
clamped to it, changes dated after `now` to `now`. Every correction is a sentence for the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from itertools import pairwise

from spm_sync.core.history import StatusChange


def in_order(
    changes: Sequence[StatusChange],
    created: datetime | None,
    now: datetime,
    problems: list[str],
) -> Sequence[StatusChange]:
    """The changes with timestamps that never go backwards, stay at or after `created` and at
    or before `now`; the corrections made are appended to `problems`."""
    ordered = all(before.at <= after.at for before, after in pairwise(changes))
    if ordered and (created is None or changes[0].at >= created) and changes[-1].at <= now:
        return changes
    fixed = list(changes)
    if not ordered:
        if _statuses_chain(fixed):
            skewed = 0
            for i in range(1, len(fixed)):
                if fixed[i].at < fixed[i - 1].at:
                    fixed[i] = fixed[i]._replace(at=fixed[i - 1].at)
                    skewed += 1
            problems.append(
                f"clock skew: {skewed} status change(s) dated before the change recorded ahead "
                "of them; taken as at that change"
            )
        else:
            fixed.sort(key=lambda change: change.at)
            problems.append("status changes out of order: sorted by time")
    if created is not None and fixed[0].at < created:
        early = sum(1 for change in fixed if change.at < created)
        fixed = [c if c.at >= created else c._replace(at=created) for c in fixed]
        problems.append(
            f"clock skew: {early} status change(s) dated before the item's creation; "
            "taken as at creation"
        )
    if fixed[-1].at > now:
        late = sum(1 for change in fixed if change.at > now)
        fixed = [c if c.at <= now else c._replace(at=now) for c in fixed]
        problems.append(f"clock skew: {late} status change(s) dated in the future; taken as now")
    return fixed


def _statuses_chain(changes: list[StatusChange]) -> bool:
    """True when each change leaves the status the change before it entered."""
    for before, after in pairwise(changes):
        if after.from_status is not None and (
            after.from_status.casefold() != before.to_status.casefold()
        ):
            return False
    return True
