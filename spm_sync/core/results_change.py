"""Parts of the result document that say what changed, for the report's digest and subject.

- `OrphanChanges`: which orphans are new since the previous completed cycle and how many were
  resolved. The headline's orphan delta is a net figure: 3 resolved and 3 new read as "no
  change", which is exactly what a portfolio manager must not be told. Only connections read
  cleanly in both runs are compared (`compared`): a tracker that failed in either run would
  otherwise turn all of its orphans into "new" or "resolved" ones.
- `WriteTally`: the run's writes per connection and field, every status counted, so the
  report can say where the writes went however many the audit log lists.
"""

from __future__ import annotations

from pydantic import Field

from spm_sync.core.domain import WriteField
from spm_sync.core.result_types import Count, ResultModel

NEW_ORPHANS_CAP = 200
"""New orphans listed by key; `new_count` counts all of them."""


class ItemRef(ResultModel):
    connection: str
    key: str


class OrphanChanges(ResultModel):
    """Orphans against the previous completed cycle `previous_run`, connection by connection."""

    previous_run: str
    compared: list[str] = Field(default_factory=list)
    """Connections read cleanly in both runs: the only ones whose orphans are compared."""
    new: list[ItemRef] = Field(default_factory=list)
    """The first `NEW_ORPHANS_CAP` new orphans, by connection and key."""
    new_count: Count = 0
    resolved_count: Count = 0
    """Orphans of the previous run that are no orphans now (aligned, done or gone)."""


class WriteTally(ResultModel):
    """One connection's writes to one field, per status
    (`spm_sync.core.results_writes.WriteRowStatus`)."""

    connection: str
    field: WriteField
    counts: dict[str, Count] = Field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def orphan_changes(
    current: list[tuple[str, str]],
    previous: list[tuple[str, str]],
    previous_run: str,
    compared: set[str],
) -> OrphanChanges:
    """New and resolved orphans among the `compared` connections (pure)."""
    now = {ref for ref in current if ref[0] in compared}
    before = {ref for ref in previous if ref[0] in compared}
    new = sorted(now - before)
    return OrphanChanges(
        previous_run=previous_run,
        compared=sorted(compared),
        new=[ItemRef(connection=c, key=k) for c, k in new[:NEW_ORPHANS_CAP]],
        new_count=len(new),
        resolved_count=len(before - now),
    )
