"""Headless Chromium for the browser tests: finding it, and how a report lays out in it at a
given width.

Headless Chromium will not make its window narrower than ~500 px, so the page is shown in an
iframe of the wanted width inside a wider window: the iframe is a real viewport of that width
(the phone @media rules apply inside it). A copy of the page carries a probe script that
measures what the test asks and tells its parent by postMessage; the parent writes the message
into the DOM, which `--dump-dom` hands back.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

BROWSERS = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    """The first Chromium on this machine, or None (the browser tests then skip)."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


WRAPPER = """<!DOCTYPE html><html><head><meta charset="utf-8"></head>
<body style="margin:0"><pre id="probe"></pre>
<iframe src="{page}" width="{width}" height="{height}" style="border:0;display:block"></iframe>
<script>window.addEventListener("message", function (e) {{
  document.getElementById("probe").textContent = e.data; }});</script>
</body></html>"""


def measure_layout(
    browser: str, page: Path, width: int, *, probe: str, height: int, tag: str
) -> dict[str, Any]:
    """What `probe` (a `<script>` posting a JSON object to its parent on load) measured in
    `page` shown `width` px wide in an iframe `height` px tall; `tag` keeps the files of two
    tests on one page apart."""
    probed = page.with_name(f"{tag}-probe-{width}.html")
    probed.write_text(
        page.read_text(encoding="utf-8").replace("</body>", probe + "</body>"), encoding="utf-8"
    )
    wrapper = page.with_name(f"{tag}-measure-{width}.html")
    wrapper.write_text(WRAPPER.format(page=probed.name, width=width, height=height))
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        f"--user-data-dir={page.parent / f'profile-{tag}-{width}'}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        wrapper.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found and found.group(1), "the report never reported its layout"
    layout: dict[str, Any] = json.loads(found.group(1).replace("&quot;", '"'))
    return layout
