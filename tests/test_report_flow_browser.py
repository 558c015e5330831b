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

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from reports.publish import publish_report
from reports.settings import ReportOptions
from tests.report_flow_fixtures import build_flow_cycle_result
from tests.test_report_browser import CONSOLE, EXAMPLES, _chromium, _screenshot

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
WRAPPER = """<!DOCTYPE html><html><head><meta charset="utf-8"></head>
<body style="margin:0"><pre id="probe"></pre>
<iframe src="{page}" width="{width}" height="{height}" style="border:0;display:block"></iframe>
<script>window.addEventListener("message", function (e) {{
  document.getElementById("probe").textContent = e.data; }});</script>
</body></html>"""


@pytest.fixture(scope="module")
def browser() -> str:
    found = _chromium()
    if found is None:
        pytest.skip("no Chromium found (chromium, chromium-browser, google-chrome): not rendered")
    return found


def _measure(browser: str, page: Path, width: int) -> dict[str, int]:
    """How the report lays out in an iframe `width` px wide."""
    probe = page.with_name(f"probe-{width}.html")
    probe.write_text(
        page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8"
    )
    wrapper = page.with_name(f"measure-{width}.html")
    wrapper.write_text(WRAPPER.format(page=probe.name, width=width, height=HEIGHT))
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        f"--user-data-dir={page.parent / f'profile-measure-{width}'}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        wrapper.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found and found.group(1), "the report never reported its layout"
    return json.loads(found.group(1).replace("&quot;", '"'))


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
