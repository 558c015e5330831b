"""The report's charts as named PNG parts: which charts a run gets, their file names and
Content-IDs.

A chart is drawn only when it has something to show: the trend takes two runs, coverage a Key
Result, the flow charts a value stream with a flow time or a weekly throughput series. Each
image is referenced by the email HTML as `cid:<cid>` and by the saved HTML as `<filename>`, so
the tuple is ordered as the images appear on the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reports.charts import trend_chart
from reports.coverage import key_result_coverage
from reports.coverage_chart import coverage_chart
from reports.flow_charts import flow_time_chart, throughput_chart
from reports.flow_view import charted_flow_times, charted_throughputs, value_streams
from spm_sync.core.results import CycleResult

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
CID_DOMAIN = "spm-sync.invalid"
"""RFC 2606: never resolves, so a Content-ID cannot clash with a real host's."""


@dataclass(frozen=True)
class ReportImage:
    name: str
    filename: str
    """Written next to the HTML files; referenced by this relative name from them."""
    cid: str
    """Content-ID without angle brackets; the email HTML says `cid:<this>`."""
    png: bytes


def report_images(result: CycleResult, stem: str) -> tuple[ReportImage, ...]:
    """Every chart this run has, in page order."""
    charts: list[tuple[str, bytes]] = []
    if len(result.trend) >= 2:  # right below the headline figures
        charts.append(("trend", trend_chart(result.trend)))
    coverage = key_result_coverage(result)
    if coverage is not None:
        charts.append(("coverage", coverage_chart(coverage.charted)))
    if result.flow is not None:
        streams = value_streams(result.flow)
        if charted_flow_times(streams):
            charts.append(("flow_time", flow_time_chart(streams)))
        if charted_throughputs(streams):
            charts.append(("throughput", throughput_chart(streams)))
    run = _UNSAFE.sub("-", result.run_id)
    return tuple(
        ReportImage(name, f"{stem}-{name}.png", f"{name}.{run}@{CID_DOMAIN}", png)
        for name, png in charts
    )
