"""The email's HTML part as a reader's browser shows it, at a phone's 400 px and a desktop's
1200 px: the digest is on the first screen, the trend right after the headline figures, nothing
is wider than the window and every chart loads. Headless Chromium is driven as in
`tests.test_report_flow_browser` (the page in an iframe of the wanted width); skipped when no
Chromium is installed.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from reports.publish import publish_report
from reports.settings import ReportOptions
from tests.test_report_browser import _chromium
from tests.test_report_digest import _digest_result

pytestmark = pytest.mark.browser

HEIGHT = 20_000
PROBE = """<script>
window.addEventListener("load", function () {
  var root = document.documentElement;
  function box(selector) {
    var found = document.querySelector(selector);
    if (!found) { return [-1, -1]; }
    var r = found.getBoundingClientRect();
    return [Math.round(r.top), Math.round(r.bottom)];
  }
  var trend = Array.from(document.querySelectorAll("h2")).find(function (h) {
    return h.textContent.indexOf("Trend") === 0;
  });
  var images = Array.from(document.images);
  parent.postMessage(JSON.stringify({
    width: root.scrollWidth,
    viewport: root.clientWidth,
    height: root.scrollHeight,
    digest: box('[data-section="digest"]'),
    trend: trend ? Math.round(trend.getBoundingClientRect().top) : -1,
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
FIRST_SCREEN = {400: 1_500, 1200: 1_100}
"""Where the digest must end: about two phone screens, one desktop screen."""


@pytest.fixture(scope="module")
def browser() -> str:
    found = _chromium()
    if found is None:
        pytest.skip("no Chromium found (chromium, chromium-browser, google-chrome): not rendered")
    return found


def measure(browser: str, page: Path, width: int) -> dict[str, object]:
    probe = page.with_name(f"digest-probe-{width}.html")
    probe.write_text(
        page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8"
    )
    wrapper = page.with_name(f"digest-measure-{width}.html")
    wrapper.write_text(WRAPPER.format(page=probe.name, width=width, height=HEIGHT))
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        f"--user-data-dir={page.parent / f'profile-digest-{width}'}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        wrapper.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found and found.group(1), "the report never reported its layout"
    layout: dict[str, object] = json.loads(found.group(1).replace("&quot;", '"'))
    return layout


@pytest.mark.parametrize("width", [400, 1200])
def test_the_digest_is_on_the_first_screen(browser: str, tmp_path: Path, width: int) -> None:
    options = ReportOptions(full_report_url="https://reports.acme.example/spm-sync/")
    published = publish_report(_digest_result(), tmp_path / "out", options=options)
    # The email's own HTML part, its cid: images pointed at the chart files written beside it.
    email = published.rendered.html
    for image in published.rendered.images:
        email = email.replace(f"cid:{image.cid}", image.filename)
    page = published.paths.html.with_name("email.html")
    page.write_text(email, encoding="utf-8")
    layout = measure(browser, page, width)
    assert layout["viewport"] == width
    assert layout["width"] <= width, f"content is {layout['width']} px wide in {width} px"
    top, bottom = layout["digest"]  # type: ignore[misc]
    assert 0 < top < bottom < FIRST_SCREEN[width], layout
    trend = layout["trend"]
    assert isinstance(trend, int) and bottom < trend < 2 * FIRST_SCREEN[width], layout
    assert layout["images"] == 2 and layout["broken"] == 0
