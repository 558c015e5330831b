"""Charts of the report, as PNG bytes.

PNG, not SVG: mail clients (Gmail, Outlook) drop inline SVG, while a PNG attached as a
`multipart/related` part and referenced by `cid:` shows everywhere. The Agg backend renders
without a display; a figure is drawn on its own `Figure` (not pyplot's global state), so
rendering is thread-safe for the scheduler's worker threads. PNG metadata is left out so the
same data gives the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime

import matplotlib

matplotlib.use("Agg")

from matplotlib.axes import Axes
from matplotlib.dates import date2num
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from spm_sync.core.results import TrendPoint

INK = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
ITEMS = "#1d4ed8"
JOB_SIZE = "#0f766e"
ORPHANS = "#d97706"
RISK = "#b91c1c"
WIDTH_INCHES, HEIGHT_INCHES, DPI = 7.2, 2.6, 160
MAX_TICKS = 8


def trend_chart(points: Sequence[TrendPoint]) -> bytes:
    """Alignment % (items and job size, left axis) and orphan count (bars, right axis).

    Needs at least two points; the caller shows a sentence instead on a first run.
    """
    return to_png(trend_figure(points))


def trend_figure(points: Sequence[TrendPoint]) -> Figure:
    """The trend chart's figure (see `trend_chart`): ticks on the runs, both axes named."""
    if len(points) < 2:
        raise ValueError("a trend needs at least two runs")
    when = [point.finished for point in points]
    figure = Figure(figsize=(WIDTH_INCHES, HEIGHT_INCHES), dpi=DPI)
    figure.patch.set_facecolor("white")
    left = figure.add_subplot()
    right = left.twinx()
    left.set_zorder(right.get_zorder() + 1)
    left.patch.set_visible(False)

    span = (when[-1] - when[0]) / max(1, len(when) - 1)
    orphans = [p.orphans for p in points]
    # matplotlib's stubs want numbers; its date converter takes datetime and timedelta.
    right.bar(when, orphans, width=span * 0.45, color=ORPHANS, alpha=0.28, label="Orphan items")  # type: ignore[arg-type]
    items = [p.alignment_pct_items for p in points]
    job_size = [p.alignment_pct_job_size for p in points]
    items_on_top = (items[-1] or 0) >= (job_size[-1] or 0)
    _line(left, when, items, ITEMS, "Aligned, by items", above=items_on_top)
    _line(left, when, job_size, JOB_SIZE, "Aligned, by job size", above=not items_on_top)

    left.set_ylim(0, 100)
    left.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    right.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    right.set_ylim(0, max(1, *orphans) * 1.6)
    ticks, labels = run_ticks(when)
    left.set_xticks(date2num(ticks), labels)
    right.set_ylabel("Orphan items", color=MUTED, fontsize=8)
    left.set_ylabel("Aligned", color=MUTED, fontsize=8)
    _style(left, right)
    handles = [*left.get_legend_handles_labels()[0], *right.get_legend_handles_labels()[0]]
    left.legend(
        handles=handles,
        loc="upper left",
        ncols=3,
        frameon=False,
        fontsize=8,
        labelcolor=INK,
        bbox_to_anchor=(0, 1.2),
    )
    figure.subplots_adjust(left=0.09, right=0.88, top=0.84, bottom=0.14)
    return figure


def run_ticks(when: Sequence[datetime], most: int = MAX_TICKS) -> tuple[list[datetime], list[str]]:
    """Ticks on the runs themselves (at most `most`, evenly picked, the last run always), each
    labelled by its day, or by day and time when two runs share a day: a date axis left to
    itself labels five "02 Dec" ticks for two runs of one day."""
    if len(when) <= most:
        picked = list(when)
    else:
        step = (len(when) - 1) / (most - 1)
        picked = [when[round(index * step)] for index in range(most)]
    for pattern in ("%d %b", "%d %b %H:%M", "%d %b %H:%M:%S"):
        labels = [f"{moment:{pattern}}" for moment in picked]
        if len(set(labels)) == len(labels):
            break
    return picked, labels


def to_png(figure: Figure) -> bytes:
    """The figure as PNG bytes, without metadata: the same data gives the same bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _line(
    axes: Axes,
    when: list[datetime],
    values: list[float | None],
    colour: str,
    label: str,
    above: bool,
) -> None:
    """A line with a marker per run; runs without a figure leave a gap instead of a zero.

    The last value is written next to its point, above or below so two labels never overlap.
    """
    plotted = [float("nan") if value is None else value for value in values]
    # matplotlib's stubs want numbers; its date converter takes datetime.
    axes.plot(when, plotted, color=colour, linewidth=2, marker="o", markersize=3.5, label=label)  # type: ignore[arg-type]
    last = next((value for value in reversed(values) if value is not None), None)
    if last is not None:
        axes.annotate(
            f"{last:.1f}%",
            (when[-1], last),
            textcoords="offset points",
            xytext=(5, 5 if above else -12),
            fontsize=8,
            color=colour,
            fontweight="bold",
        )


def _style(left: Axes, right: Axes) -> None:
    for axes in (left, right):
        for side in ("top", "left", "right"):
            axes.spines[side].set_visible(False)
        axes.spines["bottom"].set_color(GRID)
        axes.tick_params(colors=MUTED, labelsize=8, length=0)
    left.grid(axis="y", color=GRID, linewidth=0.8)
    left.set_axisbelow(True)
