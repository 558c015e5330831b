"""Write plans the contract's push scenarios send, built from pulled items as the planner
would build them (each write carries the revision it was planned from)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from connectors.base import Connector
from spm_sync.core.domain import ConnectionPlan, Level, PlannedWrite, WorkItem, WriteField

PORTFOLIO_LEVELS = (Level.INITIATIVE, Level.EPIC, Level.FEATURE)


def portfolio_items(connector: Connector) -> dict[str, WorkItem]:
    """The pulled items above story level (what WSJF scores and ranks), by key."""
    return {item.key: item for item in connector.pull(None) if item.level in PORTFOLIO_LEVELS}


def first(items: dict[str, WorkItem], count: int) -> list[WorkItem]:
    """`count` items in a stable order, the same on every run."""
    ordered = sorted(items.values(), key=lambda item: (len(item.key), item.key))
    assert len(ordered) >= count, f"the seeded portfolio has only {len(ordered)} such items"
    return ordered[:count]


def score_writes(name: str, items: Iterable[WorkItem], base: float = 10.0) -> list[PlannedWrite]:
    """A new WSJF score for each item (base, base + 1, ...), planned from its pulled revision."""
    return [
        PlannedWrite(
            name, item.key, WriteField.WSJF_SCORE, item.wsjf_score, base + n, item.revision
        )
        for n, item in enumerate(items)
    ]


def score_plan(name: str, writes: Sequence[PlannedWrite]) -> ConnectionPlan:
    return ConnectionPlan(name, tuple(writes))


def replanned(
    name: str, writes: Iterable[PlannedWrite], fresh: dict[str, WorkItem]
) -> ConnectionPlan:
    """The same target values planned again from a fresh pull (what the next run plans)."""
    return ConnectionPlan(
        name,
        tuple(
            PlannedWrite(
                name,
                w.item_key,
                w.field,
                fresh[w.item_key].wsjf_score,
                w.new,
                fresh[w.item_key].revision,
            )
            for w in writes
        ),
    )


def write_requests(connector: Connector) -> int:
    """Write requests made so far: Jira edits and rank moves are PUTs, Azure DevOps updates
    PATCHes (alone or in a `$batch`)."""
    return sum(
        count
        for endpoint, count in connector.stats.by_endpoint.items()
        if endpoint.startswith(("PUT", "PATCH"))
    )
