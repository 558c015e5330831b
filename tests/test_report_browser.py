"""The report as a browser shows it: headless Chromium renders the file version.

Skipped, with the reason shown, when no Chromium is installed (Debian: `apt-get install
chromium`). Set SPM_SYNC_UPDATE_EXAMPLES=1 to refresh the screenshots and text in
`reports/examples/` from the fixture portfolio.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from reports.publish import publish_report
from reports.settings import ReportOptions
from tests.report_fixtures import build_cycle_result

pytestmark = pytest.mark.browser

EXAMPLES = Path(__file__).resolve().parent.parent / "reports" / "examples"
CONSOLE = re.compile(r"CONSOLE|Uncaught|net::ERR_|Failed to load resource|Refused to")


def _screenshot(browser: str, page: Path, out: Path, width: int, height: int) -> str:
    """Renders `page` to `out`; returns what Chromium logged."""
    profile = out.parent / f"profile-{width}"
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        f"--screenshot={out}",
        f"--window-size={width},{height}",
        "--enable-logging=stderr",
        "--v=0",
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout + done.stderr


# Headless Chromium lays pages out at least 500 px wide (its minimum window width), so the
# narrow case is the closest a command-line screenshot gets to a phone; the @media rules for
# phones (max-width 620 px) apply there.
@pytest.mark.parametrize(("width", "height"), [(1200, 2400), (500, 2400)])
def test_report_renders_without_console_errors(
    browser: str, tmp_path: Path, width: int, height: int
) -> None:
    # Where an operator would serve the output folder; also keeps machine paths out of the
    # committed example text.
    options = ReportOptions(full_report_url="https://reports.acme.example/spm-sync/")
    published = publish_report(build_cycle_result(), tmp_path / "out", options=options)
    shot = tmp_path / f"report-{width}.png"
    log = _screenshot(browser, published.paths.html, shot, width, height)
    problems = [line for line in log.splitlines() if CONSOLE.search(line)]
    assert problems == []
    with Image.open(shot) as image:
        assert image.size == (width, height)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    # A blank or unstyled page has a handful of colours; the report has text, badges, a chart.
    assert colours is None or len(colours) > 200
    if os.environ.get("SPM_SYNC_UPDATE_EXAMPLES") == "1" and width == 1200:
        EXAMPLES.mkdir(exist_ok=True)
        shutil.copyfile(shot, EXAMPLES / "alignment-report.png")
        shutil.copyfile(published.paths.text, EXAMPLES / "alignment-report.txt")
    if os.environ.get("SPM_SYNC_UPDATE_EXAMPLES") == "1" and width < 600:
        shutil.copyfile(shot, EXAMPLES / "alignment-report-phone.png")


def test_full_report_with_hostile_titles_runs_no_script(browser: str, tmp_path: Path) -> None:
    """Titles that would log to the console if they ever became markup."""
    result = build_cycle_result(orphans=300, hostile_titles=True)
    payloads = (
        '<script>console.log("xss-script")</script>',
        '<img src=x onerror=console.log("xss-img")>',
    )
    for number, payload in enumerate(payloads):
        orphan = result.alignment.orphans[number]
        result.alignment.orphans[number] = orphan.model_copy(update={"title": payload})
    published = publish_report(result, tmp_path)
    html = published.paths.full_html.read_text(encoding="utf-8")
    sources = re.findall(r'src="([^"]+)"', html)
    assert sources and all((tmp_path / source).is_file() for source in sources)
    log = _screenshot(browser, published.paths.full_html, tmp_path / "full.png", 1200, 2400)
    assert [line for line in log.splitlines() if CONSOLE.search(line)] == []
