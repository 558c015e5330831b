"""How much of each long list the report shows: the caps, and a capped list with its total.

The email must stay under Gmail's clipping size however big the portfolio is, so every list
that grows with it is capped, tier by tier (`EMAIL_CAPS`) until the HTML fits; what is left out
is counted ("and N more") and shown in full in the uncapped file (`UNCAPPED`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

T = TypeVar("T")
ALL = sys.maxsize


@dataclass(frozen=True)
class Caps:
    """How many rows of each long list are shown; the rest is counted as "and N more"."""

    kr_items: int = ALL
    orphan_groups: int = ALL
    orphans_per_group: int = ALL
    unscored: int = ALL
    writes: int = ALL
    warnings: int = ALL
    trend_points: int = ALL
    value_streams: int = ALL
    """Rows of the flow table and panels of the flow charts."""
    kanban_boards: int = ALL
    kanban_cards: int = ALL
    """Cards per Kanban column (the document lists up to `FlowCaps.cards_per_column`)."""
    kanban_done_cards: int = ALL
    """Cards per Done column: finished work needs no decision, so the email only counts it."""
    stop_starting: int = ALL
    ageing: int = ALL
    flow_problems: int = ALL
    forecasts: int = ALL
    """Objectives in the forecast table, those at risk first (so a cap keeps them)."""
    portfolio_rows: int = ALL
    """Rows of the objective tree, objectives and Key Results alike (depth-first, so a cap
    keeps the top of the tree)."""
    portfolio_cuts: int = ALL
    """Cut lines (team and interval) of the capacity table."""
    portfolio_named: int = ALL
    """Items named per cut line (best WSJF below it, in progress below it)."""
    portfolio_flags: int = ALL
    """Dependency flags per kind, and OKR tree problems."""
    wsjf_rows: int = ALL
    """Rows of the WSJF table per connection (`ReportOptions.top_n` shared among them)."""
    digest_objectives: int = ALL
    """Top objectives in the digest (all of them in the objective tree)."""
    digest_orphans: int = ALL
    """New orphans named in the digest (all of them in the orphan section)."""


UNCAPPED = Caps()
EMAIL_CAPS: tuple[Caps, ...] = (
    Caps(
        kr_items=8,
        orphan_groups=8,
        orphans_per_group=8,
        unscored=12,
        writes=20,
        warnings=8,
        trend_points=12,
        value_streams=20,
        kanban_boards=5,
        kanban_cards=3,
        kanban_done_cards=0,
        stop_starting=15,
        ageing=10,
        flow_problems=10,
        forecasts=40,
        portfolio_rows=40,
        portfolio_cuts=12,
        portfolio_named=3,
        wsjf_rows=25,
        digest_objectives=12,
        digest_orphans=8,
        portfolio_flags=10,
    ),
    Caps(
        kr_items=5,
        orphan_groups=6,
        orphans_per_group=5,
        unscored=8,
        writes=12,
        warnings=5,
        trend_points=8,
        value_streams=12,
        kanban_boards=4,
        kanban_cards=2,
        kanban_done_cards=0,
        stop_starting=10,
        ageing=8,
        flow_problems=6,
        forecasts=25,
        portfolio_rows=30,
        portfolio_cuts=8,
        portfolio_named=2,
        wsjf_rows=15,
        digest_objectives=10,
        digest_orphans=6,
        portfolio_flags=6,
    ),
    Caps(
        kr_items=3,
        orphan_groups=4,
        orphans_per_group=3,
        unscored=5,
        writes=6,
        warnings=3,
        trend_points=6,
        value_streams=8,
        kanban_boards=3,
        kanban_cards=2,
        kanban_done_cards=0,
        stop_starting=6,
        ageing=5,
        flow_problems=4,
        forecasts=15,
        portfolio_rows=20,
        portfolio_cuts=6,
        portfolio_named=2,
        wsjf_rows=10,
        digest_objectives=8,
        digest_orphans=5,
        portfolio_flags=4,
    ),
    # Last resort for a very large OKR tree: Key Results with their counts, no items.
    Caps(
        kr_items=0,
        orphan_groups=3,
        orphans_per_group=2,
        unscored=3,
        writes=3,
        warnings=2,
        trend_points=4,
        value_streams=4,
        kanban_boards=1,
        kanban_cards=1,
        kanban_done_cards=0,
        stop_starting=4,
        ageing=3,
        flow_problems=3,
        forecasts=8,
        portfolio_rows=12,
        portfolio_cuts=4,
        portfolio_named=1,
        wsjf_rows=5,
        digest_objectives=5,
        digest_orphans=3,
        portfolio_flags=3,
    ),
)
EMAIL_CAPS += (
    # Past the last tier, for a portfolio whose email is full without the portfolio part: the
    # objective tree, cut lines and dependency flags are counted and left to the full report.
    replace(
        EMAIL_CAPS[-1], portfolio_rows=0, portfolio_cuts=0, portfolio_named=0, portfolio_flags=0
    ),
)
"""Tried in order until the email HTML fits its size budget."""


@dataclass(frozen=True)
class Shown(Generic[T]):
    rows: list[T]
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.rows)

    @classmethod
    def cap(cls, rows: Sequence[T], limit: int, total: int | None = None) -> Shown[T]:
        """The first `limit` rows; `total` when `rows` are already the first of a longer list
        (the result document caps some lists itself)."""
        return cls(rows=list(rows[:limit]), total=len(rows) if total is None else total)
