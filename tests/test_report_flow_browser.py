"""The report with flow sections as a browser shows it, at a phone's 400 px and a desktop's
1200 px: nothing wider than the window, no console errors, images loaded.

Headless Chromium will not make its window narrower than ~500 px, so the report is shown in an
iframe of the wanted width inside a wider window: the iframe is a real 400 px viewport (the
phone @media rules apply inside it). A copy of the report tells its parent, by postMessage,
how wide its content is and where the flow sections start. Skipped when no Chromium is
installed. With SPM_SYNC_UPDATE_EXAMPLES=1 the flow screenshots in `reports/examples/` are
refreshed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from reports.publish import publish_report
from reports.settings import ReportOptions
from tests.browser_layout import WRAPPER, measure_layout
from tests.report_flow_fixtures import build_flow_cycle_result
from tests.test_report_browser import CONSOLE, EXAMPLES, _screenshot

pytestmark = pytest.mark.browser

HEIGHT = 16_000
"""Taller than the fixture report at 400 px, so the iframe never scrolls."""
PROBE = """<script>
window.addEventListener("load", function () {
  var root = document.documentElement;
  function top(heading) {
    var found = Array.from(document.querySelectorAll("h2")).find(function (h) {
      return h.textContent.indexOf(heading) === 0;
    });
    return found ? Math.round(found.getBoundingClientRect().top) : -1;
  }
  var images = Array.from(document.images);
  parent.postMessage(JSON.stringify({
    width: root.scrollWidth,
    viewport: root.clientWidth,
    height: root.scrollHeight,
    kanban: top("Portfolio Kanban by value stream"),
    flow: top("Flow by value stream"),
    images: images.length,
    broken: images.filter(function (i) { return !i.complete || !i.naturalWidth; }).length
  }), "*");
});
</script>"""


def _measure(browser: str, page: Path, width: int) -> dict[str, Any]:
    """How the report lays out in an iframe `width` px wide."""
    return measure_layout(browser, page, width, probe=PROBE, height=HEIGHT, tag="flow")


@pytest.mark.parametrize("width", [400, 1200])
def test_flow_report_fits_the_window_and_loads_its_charts(
    browser: str, tmp_path: Path, width: int
) -> None:
    options = ReportOptions(full_report_url="https://reports.acme.example/spm-sync/")
    published = publish_report(build_flow_cycle_result(), tmp_path / "out", options=options)
    page = published.paths.html
    layout = _measure(browser, page, width)
    assert layout["viewport"] == width
    assert layout["width"] <= width, f"content is {layout['width']} px wide in {width} px"
    assert layout["images"] == 4 and layout["broken"] == 0
    assert 0 < layout["kanban"] < layout["flow"] < layout["height"]

    wrapper = page.with_name(f"shot-{width}.html")
    wrapper.write_text(WRAPPER.format(page=page.name, width=width, height=layout["height"]))
    shot = tmp_path / f"flow-{width}.png"
    log = _screenshot(browser, wrapper, shot, 1200, layout["height"] + 40)
    assert [line for line in log.splitlines() if CONSOLE.search(line)] == []
    with Image.open(shot) as image:
        report = image.convert("RGB").crop((0, 40, width, 40 + layout["height"]))
    colours = report.getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 200
    if os.environ.get("SPM_SYNC_UPDATE_EXAMPLES") == "1":
        # Desktop: the flow charts, table and ageing work; phone: the Portfolio Kanban.
        top = 40 + layout["flow" if width > 600 else "kanban"] - 20
        name = "alignment-report-flow.png" if width > 600 else "alignment-report-kanban-phone.png"
        with Image.open(shot) as image:
            image.crop((0, top, width, top + 2400)).save(EXAMPLES / name, optimize=True)
