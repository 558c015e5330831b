"""Each connection's alignment block of the result document, counted from the alignment
engine's per-connection tallies (`spm_sync.core.results_connections` holds the model).

Key Results registered from one tracker's items (objective `unlisted:<connection>`) belong to
that connection only, so another connection never lists them as uncovered.
"""

from __future__ import annotations

from collections.abc import Sequence

from spm_sync.core.results_connections import ConnectionFigures
from spm_sync.engines.alignment import AlignmentResult, ConnectionTally

UNLISTED_PREFIX = "unlisted:"
"""The objective id prefix of Key Results registered from tracker items (`alignment_evidence`)."""


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
