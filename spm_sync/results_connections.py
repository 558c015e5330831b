"""The alignment figures of each connection, beside the totals (`AlignmentSummary.by_connection`).

Totals over every tracker hide the tracker that lags: a Key Result moved by Jira work is
covered in the totals even when the Azure DevOps teams, who were meant to move it too, have
nothing on it. Each connection's block counts exactly as the totals do (its figures add up to
them) and lists the Key Results that no active in-scope work *of that connection* moves.

Key Results registered from one tracker's items (objective `unlisted:<connection>`) belong to
that connection only, so another connection never lists them as uncovered.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field, model_validator

from spm_sync.alignment import AlignmentResult, ConnectionTally
from spm_sync.result_types import Count, Percent, ResultModel

UNLISTED_PREFIX = "unlisted:"
"""The objective id prefix of Key Results registered from tracker items (`alignment_evidence`)."""


class ConnectionFigures(ResultModel):
    """One connection's alignment: its in-scope work, how much of it moves a Key Result (by
    items and by job size), its orphans, and the Key Results none of its active work moves."""

    name: str
    in_scope_count: Count = 0
    aligned_count: Count = 0
    alignment_pct_items: Percent | None = None
    """None when the connection has no item in scope."""
    in_scope_job_size: float = Field(0.0, ge=0)
    aligned_job_size: float = Field(0.0, ge=0)
    alignment_pct_job_size: Percent | None = None
    """Over the in-scope items with a usable job size; None when none has one."""
    unsized_count: Count = 0
    """In-scope items without a usable job size (left out of both job size sums)."""
    orphans: Count = 0
    uncovered_key_results: list[str] = Field(default_factory=list)
    """Ids of the Key Results that no active in-scope item of this connection moves."""

    @model_validator(mode="after")
    def _aligned_within_scope(self) -> ConnectionFigures:
        if self.aligned_count > self.in_scope_count:
            raise ValueError(
                f"{self.name}: aligned_count {self.aligned_count} exceeds in_scope_count "
                f"{self.in_scope_count}"
            )
        return self


def connection_figures(
    alignment: AlignmentResult, connections: Sequence[str]
) -> list[ConnectionFigures]:
    """A block per connection, configured ones first in config order (a connection with
    nothing in scope still gets its block: that is the news), then any other the items name."""
    names = list(dict.fromkeys([*connections, *sorted(alignment.by_connection)]))
    orphans: dict[str, int] = {}
    for orphan in alignment.orphans:
        orphans[orphan.connection] = orphans.get(orphan.connection, 0) + 1
    return [
        _block(name, alignment, alignment.by_connection.get(name), orphans.get(name, 0))
        for name in names
    ]


def _block(
    name: str, alignment: AlignmentResult, tally: ConnectionTally | None, orphans: int
) -> ConnectionFigures:
    tally = tally or ConnectionTally()
    sized = tally.in_scope_job_size
    return ConnectionFigures(
        name=name,
        in_scope_count=tally.in_scope_count,
        aligned_count=tally.aligned_count,
        alignment_pct_items=(
            100.0 * tally.aligned_count / tally.in_scope_count if tally.in_scope_count else None
        ),
        in_scope_job_size=sized,
        aligned_job_size=tally.aligned_job_size,
        alignment_pct_job_size=100.0 * tally.aligned_job_size / sized if sized else None,
        unsized_count=tally.unsized_in_scope_count,
        orphans=orphans,
        uncovered_key_results=_uncovered(name, alignment),
    )


def _uncovered(name: str, alignment: AlignmentResult) -> list[str]:
    uncovered: list[str] = []
    for key_result in alignment.key_results:
        objective = key_result.objective_id
        if objective.startswith(UNLISTED_PREFIX) and objective != f"{UNLISTED_PREFIX}{name}":
            continue  # registered from another tracker's items: not this connection's to move
        coverage = alignment.coverage.get(key_result.id)
        if coverage is None or not coverage.active_by_connection.get(name):
            uncovered.append(key_result.id)
    return uncovered
