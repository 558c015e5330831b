"""Key Result coverage: how much work moves each Key Result, and how much moves none.

The first report of a new install has no trend (that takes two runs), yet the question a
portfolio office asks first is the same on day one: which Key Results have work behind them,
how big is that work, and how much work serves no Key Result at all. The result document
derives the bars (`CycleResult.key_result_coverage`) from totals that cover every item, even
when a Key Result's item list is capped; this module adds each Key Result's risk and what the
chart and its alt text need.

One item can move several Key Results, so the bars may add up to more than the aligned items;
the orphan bar counts each orphan once.
"""

from __future__ import annotations

from dataclasses import dataclass

from reports.formatting import format_count
from spm_sync.core.results import CycleResult

MAX_CHART_KEY_RESULTS = 30
"""Key Results drawn in the chart (in OKR order); a bigger tree is listed in the text twin and
the OKR section, where every Key Result keeps its counts. 30 rows keep the PNG a readable
height on a phone."""


@dataclass(frozen=True)
class CoverageRow:
    """One row of the coverage chart and its table: a Key Result, or the orphan work."""

    label: str
    """The Key Result's id, or "Orphans": short enough for the chart's row labels."""
    title: str
    items: int
    job_size: float
    at_risk: bool = False
    """Nothing active moves it and its target is not known to be met."""
    orphans: bool = False


@dataclass(frozen=True)
class Coverage:
    key_results: list[CoverageRow]
    """Every Key Result, in OKR order."""
    orphans: CoverageRow

    @property
    def rows(self) -> list[CoverageRow]:
        """Every Key Result, then the orphan row: the table of the text twin."""
        return [*self.key_results, self.orphans]

    @property
    def charted(self) -> list[CoverageRow]:
        """The rows the chart draws: the first Key Results, then the orphan bar."""
        return [*self.key_results[:MAX_CHART_KEY_RESULTS], self.orphans]

    @property
    def not_charted(self) -> int:
        """Key Results left out of the chart (the table still lists them)."""
        return max(0, len(self.key_results) - MAX_CHART_KEY_RESULTS)

    @property
    def at_risk(self) -> int:
        return sum(1 for row in self.key_results if row.at_risk)

    @property
    def alt_text(self) -> str:
        """The chart's numbers in words, for readers who do not see the image (and for mail
        clients that block images until asked)."""
        rows = "; ".join(_described(row) for row in self.charted)
        left_out = f" ({self.not_charted:,} more Key Results are listed in the text)"
        return (
            f"Bar chart of items and job size per Key Result{left_out if self.not_charted else ''}"
            f": {rows}."
        )


def key_result_coverage(result: CycleResult) -> Coverage | None:
    """The coverage rows (`CycleResult.key_result_coverage`, with each Key Result's risk);
    None when the OKR file names no Key Result (nothing to chart)."""
    at_risk = {
        (objective.id, key_result.id): key_result.at_risk
        for objective in result.alignment.objectives
        for key_result in objective.key_results
    }
    rows = [
        CoverageRow(
            label=bar.id or "Orphans",
            title=bar.title,
            items=bar.items,
            job_size=bar.job_size,
            at_risk=at_risk.get((bar.objective_id or "", bar.id or ""), False),
            orphans=bar.kind == "orphans",
        )
        for bar in result.key_result_coverage
    ]
    key_results = [row for row in rows if not row.orphans]
    orphans = [row for row in rows if row.orphans]
    if not key_results or len(orphans) != 1:
        return None
    return Coverage(key_results=key_results, orphans=orphans[0])


def _described(row: CoverageRow) -> str:
    items = f"{format_count(row.items)} item{'s' if row.items != 1 else ''}"
    risk = ", at risk" if row.at_risk else ""
    return f"{row.label} {items}, job size {format_count(row.job_size)}{risk}"
