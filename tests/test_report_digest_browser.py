"""The email's HTML part as a reader's browser shows it, at a phone's 400 px and a desktop's
1200 px: the digest is on the first screen, the trend right after the headline figures, nothing
is wider than the window and every chart loads. Headless Chromium is driven as in
`tests.test_report_flow_browser` (the page in an iframe of the wanted width); skipped when no
Chromium is installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reports.publish import publish_report
from reports.settings import ReportOptions
from tests.browser_layout import measure_layout
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
FIRST_SCREEN = {400: 1_500, 1200: 1_100}
"""Where the digest must end: about two phone screens, one desktop screen."""


def measure(browser: str, page: Path, width: int) -> dict[str, Any]:
    """How the report lays out in an iframe `width` px wide."""
    return measure_layout(browser, page, width, probe=PROBE, height=HEIGHT, tag="digest")


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
    top, bottom = layout["digest"]
    assert 0 < top < bottom < FIRST_SCREEN[width], layout
    trend = layout["trend"]
    assert isinstance(trend, int) and bottom < trend < 2 * FIRST_SCREEN[width], layout
    assert layout["images"] == 2 and layout["broken"] == 0
