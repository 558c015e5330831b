"""The Key Result coverage chart: items and job size per Key Result, orphan work last.

Two panels side by side sharing the rows, not two bars per row: items and job size have
different scales, and one axis each keeps both readable without a second scale to decode.
Drawn for a phone first: the image is shown at most 480 px wide and shrinks to ~330 px in a
400 px window, so the fonts are sized for that (11 pt on a 4.8 in figure is ~10 px there,
~15 px on a desktop).
Being at risk is written next to the bar ("· at risk"), not told by colour alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from reports.charts import DPI, GRID, INK, ITEMS, JOB_SIZE, MUTED, ORPHANS, RISK, to_png
from reports.coverage import CoverageRow
from reports.formatting import format_count

WIDTH_INCHES = 4.8
DISPLAY_WIDTH_PX = 480
"""The `width` the templates give the image (and the CSS its max-width): 100 px per inch."""
ROW_INCHES = 0.3
FONT_SIZE = 11


def coverage_chart(bars: Sequence[CoverageRow]) -> bytes:
    """Horizontal bars, one row per entry of `bars` in the given order (top to bottom)."""
    if not bars:
        raise ValueError("a coverage chart needs at least one row")
    height = 1.2 + ROW_INCHES * len(bars)
    figure = Figure(figsize=(WIDTH_INCHES, height), dpi=DPI, layout="constrained")
    figure.patch.set_facecolor("white")
    items_axes, size_axes = figure.subplots(1, 2, sharey=True)
    rows = list(range(len(bars)))

    _panel(
        items_axes,
        rows,
        [float(bar.items) for bar in bars],
        [ORPHANS if bar.orphans else ITEMS for bar in bars],
        [_items_label(bar) for bar in bars],
        title="Items aligned",
        axis_label="items",
    )
    _panel(
        size_axes,
        rows,
        [bar.job_size for bar in bars],
        [ORPHANS if bar.orphans else JOB_SIZE for bar in bars],
        [format_count(bar.job_size) for bar in bars],
        title="Job size aligned",
        axis_label="job size",
    )
    items_axes.set_yticks(rows, labels=[bar.label for bar in bars])
    for tick, bar in zip(items_axes.get_yticklabels(), bars, strict=True):
        if bar.at_risk:
            tick.set_color(RISK)
            tick.set_fontweight("bold")
    items_axes.invert_yaxis()  # shared: the first Key Result on top in both panels
    if any(bar.orphans for bar in bars) and len(bars) > 1:
        for axes in (items_axes, size_axes):
            axes.axhline(len(bars) - 1.5, color=MUTED, linewidth=0.8, linestyle=(0, (2, 2)))
    return to_png(figure)


def _panel(
    axes: Axes,
    rows: list[int],
    values: list[float],
    colours: list[str],
    labels: list[str],
    *,
    title: str,
    axis_label: str,
) -> None:
    bars = axes.barh(rows, values, color=colours, height=0.62)
    axes.bar_label(bars, labels=labels, padding=3, fontsize=FONT_SIZE - 1, color=INK)
    # Room on the right for the longest value label ("12 · at risk").
    axes.set_xlim(0, max(1.0, *values) * 1.45)
    axes.xaxis.set_major_locator(MaxNLocator(nbins=3, integer=True))
    axes.set_title(title, loc="left", fontsize=FONT_SIZE, color=INK, fontweight="bold")
    axes.set_xlabel(axis_label, fontsize=FONT_SIZE - 1, color=MUTED)
    for side in ("top", "left", "right"):
        axes.spines[side].set_visible(False)
    axes.spines["bottom"].set_color(GRID)
    axes.tick_params(colors=MUTED, labelsize=FONT_SIZE - 1, length=0)
    axes.tick_params(axis="y", colors=INK, labelsize=FONT_SIZE)
    axes.grid(axis="x", color=GRID, linewidth=0.8)
    axes.set_axisbelow(True)


def _items_label(bar: CoverageRow) -> str:
    count = format_count(bar.items)
    return f"{count} · at risk" if bar.at_risk else count
