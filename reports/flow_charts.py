"""The flow charts: flow time and weekly throughput per value stream, one image each.

One image per kind, streams as rows or small multiples, rather than two images per stream:
each image is a MIME part of the email and a file beside the report, and twenty streams would
otherwise mean forty attachments. The busiest `MAX_CHART_STREAMS` streams are drawn; the table
beside the charts lists every stream. Sized like the coverage chart, for a phone first.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from reports.charts import DPI, GRID, INK, ITEMS, MUTED, to_png
from reports.coverage_chart import FONT_SIZE, WIDTH_INCHES
from reports.flow_view import charted_flow_times, charted_throughputs, format_days
from spm_sync.core.results_flow import GroupFlow

PERCENTILE_SHADES = ("#1d4ed8", "#60a5fa", "#bfdbfe")
"""50%, 85%, 95%: darkest for what half the items beat, lightest for the slow tail."""
PANEL_INCHES = 1.25


def flow_time_chart(streams: Sequence[GroupFlow]) -> bytes:
    """One row per stream with a flow time: segments up to the 50th, 85th and 95th
    percentile, the three numbers written at the end of the row."""
    rows = charted_flow_times(streams)
    if not rows:
        raise ValueError("no value stream has a flow time")
    figure = Figure(figsize=(WIDTH_INCHES, 1.3 + 0.32 * len(rows)), dpi=DPI, layout="constrained")
    figure.patch.set_facecolor("white")
    axes = figure.add_subplot()
    positions = list(range(len(rows)))
    starts = [0.0] * len(rows)
    for index, shade in enumerate(PERCENTILE_SHADES):
        ends = [_percentiles(group)[index] for group in rows]
        widths = [end - start for start, end in zip(starts, ends, strict=True)]
        axes.barh(positions, widths, left=starts, color=shade, height=0.6)
        starts = ends
    for position, group in zip(positions, rows, strict=True):
        p50, p85, p95 = (format_days(value) for value in _percentiles(group))
        axes.annotate(
            f"{p50} · {p85} · {p95}",
            (_percentiles(group)[2], position),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=FONT_SIZE - 1,
            color=INK,
        )
    axes.set_yticks(positions, labels=[_short(group.title) for group in rows])
    axes.invert_yaxis()
    axes.set_xlim(0, max(_percentiles(group)[2] for group in rows) * 1.45)
    axes.set_xlabel("days from start to done", fontsize=FONT_SIZE - 1, color=MUTED)
    figure.suptitle(
        "Flow time, days", x=0.01, ha="left", fontsize=FONT_SIZE, color=INK, fontweight="bold"
    )
    figure.legend(
        handles=[
            Patch(color=shade, label=f"{percent}% done within")
            for shade, percent in zip(PERCENTILE_SHADES, (50, 85, 95), strict=True)
        ],
        loc="outside lower left",
        ncols=3,
        fontsize=FONT_SIZE - 2,
        frameon=False,
        labelcolor=INK,
        handlelength=1.2,
        columnspacing=1.0,
    )
    _style(axes)
    axes.tick_params(axis="y", colors=INK, labelsize=FONT_SIZE)
    axes.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    return to_png(figure)


def throughput_chart(streams: Sequence[GroupFlow]) -> bytes:
    """Small multiples, two per row: items done per week, one panel per stream, on one scale
    so streams compare at a glance; each panel's title gives its velocity."""
    panels = charted_throughputs(streams)
    if not panels:
        raise ValueError("no value stream has a throughput series")
    columns = 2 if len(panels) > 1 else 1
    rows = -(-len(panels) // columns)
    figure = Figure(
        figsize=(WIDTH_INCHES, 0.7 + PANEL_INCHES * rows), dpi=DPI, layout="constrained"
    )
    figure.patch.set_facecolor("white")
    grid = figure.subplots(rows, columns, sharey=True, squeeze=False)
    for index, axes in enumerate(grid.flat):
        if index >= len(panels):
            axes.set_visible(False)
            continue
        group = panels[index]
        counts = [week.count for week in group.weekly_throughput]
        axes.bar(range(len(counts)), counts, color=ITEMS, width=0.75)
        axes.set_title(
            f"{_short(group.title)} · {group.velocity_per_week:.1f}/week",
            loc="left",
            fontsize=FONT_SIZE - 1,
            color=INK,
        )
        weeks = group.weekly_throughput
        axes.set_xticks(
            [0, len(weeks) - 1],
            labels=[f"{weeks[0].week_start:%d %b}", f"{weeks[-1].week_start:%d %b}"],
        )
        first, last = axes.get_xticklabels()
        first.set_horizontalalignment("left")  # neighbouring panels' labels never touch
        last.set_horizontalalignment("right")
        axes.yaxis.set_major_locator(MaxNLocator(nbins=3, integer=True))
        _style(axes)
        axes.grid(axis="y", color=GRID, linewidth=0.8)
        axes.grid(axis="x", visible=False)
    figure.suptitle(
        "Items done per week", x=0.01, ha="left", fontsize=FONT_SIZE, color=INK, fontweight="bold"
    )
    figure.supxlabel("week starting", fontsize=FONT_SIZE - 1, color=MUTED)
    figure.supylabel("items done", fontsize=FONT_SIZE - 1, color=MUTED)
    return to_png(figure)


def _percentiles(group: GroupFlow) -> tuple[float, float, float]:
    flow = group.flow_time
    assert flow is not None  # filtered by the caller
    return (flow.p50, flow.p85, flow.p95)


def _short(title: str, length: int = 18) -> str:
    """Stream names label rows and panels on a phone-sized image: long ones are cut."""
    return title if len(title) <= length else title[: length - 1].rstrip() + "…"


def _style(axes: Axes) -> None:
    for side in ("top", "left", "right"):
        axes.spines[side].set_visible(False)
    axes.spines["bottom"].set_color(GRID)
    axes.tick_params(colors=MUTED, labelsize=FONT_SIZE - 2, length=0)
    axes.grid(axis="x", color=GRID, linewidth=0.8)
    axes.set_axisbelow(True)
