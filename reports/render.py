"""Render a `CycleResult` to the report: email HTML, file HTML, full HTML and plain text.

One Jinja2 environment with `select_autoescape`: titles, team names and errors come from
trackers and are untrusted, so every value is escaped in the HTML templates; links are only
emitted for http(s) URLs. Its `finalize` makes every bidirectional control character visible
(`reports.bidi`) in both HTML and text, so a title cannot reverse what a reader sees; the HTML
templates also isolate each tracker title (`isolate`) so a right-to-left one displays in its
own direction without reordering the text beside it.

CSS is written once (`templates/report.css`) and inlined into each element with css_inline,
because Gmail and Outlook drop or mangle `<style>` blocks; only the phone-width `@media`
rules stay in a `<style>` block (clients that drop it still get a layout that fits).

Four renderings of the same facts:
- `html`: the email part. Long lists are capped ("and N more") and caps are tightened until
  the HTML fits `ReportOptions.max_email_html_bytes` (Gmail clips messages past ~102 KB).
  Charts are referenced as `cid:` parts.
- `file_html`: the same capped page, charts referenced by relative file name, "and N more"
  linking to the full file.
- `full_html`: uncapped, every orphan and write, for the output directory.
- `text`: the plain-text alternative, capped like `html`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import css_inline
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from reports.bidi import neutralise_bidi
from reports.caps import EMAIL_CAPS, UNCAPPED
from reports.flow_view import format_days
from reports.formatting import format_count, format_pct, format_seconds
from reports.images import ReportImage, report_images
from reports.settings import ReportOptions
from reports.subject import subject_fields
from reports.view import ReportView, build_view
from spm_sync.core.results import CycleResult

log = logging.getLogger(__name__)

_SAFE_URL = re.compile(r"^(https?://|mailto:)[^\s<>\"']+$", re.IGNORECASE)
_SIBLING_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.html$")
_UNSAFE_STEM = re.compile(r"[^A-Za-z0-9._-]+")
_CLASS_ATTRIBUTE = re.compile(r' class="([^"]*)"')
MEDIA_CLASSES = frozenset({"mast", "content", "foot", "fig", "figv", "hs"})
"""Classes the phone-width @media rules in report.css select; all others are dropped after
inlining because their styles are already on the element."""
_INLINER = css_inline.CSSInliner(keep_at_rules=True, minify_css=True, load_remote_stylesheets=False)


@dataclass(frozen=True)
class FullLink:
    """Where the uncapped report is: a link target (or None when it is only a path) and a label."""

    href: str | None
    label: str
    where: str | None = None
    """Without a link: where the full file is, said once at the foot of the email."""


@dataclass(frozen=True)
class RenderedReport:
    run_id: str
    stem: str
    """Run-specific file stem: `<stem>.html`, `<stem>-full.html`, `<stem>.txt`, `<stem>.eml`."""
    html: str
    text: str
    images: tuple[ReportImage, ...]
    file_html: str
    full_html: str
    subject_fields: Mapping[str, str]
    """Values for the placeholders of `EmailSettings.subject`."""

    @property
    def full_filename(self) -> str:
        return full_report_filename(self.stem)


def report_stem(result: CycleResult) -> str:
    """'alignment-2026-03-02-0614-run-100': sortable by date, unique per run, safe in paths."""
    run = _UNSAFE_STEM.sub("-", result.run_id).strip("-.")[:60] or "run"
    return f"alignment-{result.finished:%Y-%m-%d-%H%M}-{run}"


def full_report_filename(stem: str) -> str:
    """The uncapped report's file name beside `<stem>.html`."""
    return f"{stem}-full.html"


def render_report(
    result: CycleResult, options: ReportOptions | None = None, *, out_dir: Path | None = None
) -> RenderedReport:
    """`out_dir`: the folder the files go to, named in the email when there is no
    `full_report_url` to link the full report to."""
    options = options or ReportOptions()
    stem = report_stem(result)
    images = report_images(result, stem)
    by_file = {image.name: image.filename for image in images}
    by_cid = {image.name: f"cid:{image.cid}" for image in images}
    full_name = full_report_filename(stem)
    email_full = email_full_link(options, full_name, out_dir)

    for caps in EMAIL_CAPS:
        view = build_view(result, options, caps)
        html = _render_html(view, by_cid, email_full)
        size = len(html.encode("utf-8"))
        if size <= options.max_email_html_bytes:
            break
        log.info("email HTML is %d bytes with %s; tightening caps", size, caps)
    else:
        log.warning(
            "email HTML is %d bytes even with the tightest caps (budget %d); it may be clipped",
            size,
            options.max_email_html_bytes,
        )
    return RenderedReport(
        run_id=result.run_id,
        stem=stem,
        html=html,
        text=_ENV.get_template("report.txt").render(_context(view, {}, email_full)),
        images=images,
        file_html=_render_html(view, by_file, FullLink(full_name, full_name)),
        # Never emailed, so it keeps its <style> block instead of inlined CSS: inlining every
        # row of an uncapped report costs more memory than the rest of a 200,000-item cycle.
        full_html=_render_html(build_view(result, options, UNCAPPED), by_file, None, inline=False),
        subject_fields=subject_fields(result),
    )


def email_full_link(options: ReportOptions, full_name: str, out_dir: Path | None) -> FullLink:
    """Where the email sends readers for the full report. Only an http(s) URL is a link; a
    path or nothing is said as such once, at the foot ("see the end of this email"), instead
    of "and 12 more, all in /var/..." on every capped list, which reads like a link and is
    none in a mail client."""
    url = options.full_report_url
    if url and url.endswith("/"):
        url += full_name  # the URL of the output folder: point at this run's full file
    if url and _SAFE_URL.match(url):
        return FullLink(url, url)
    if url:
        where = f"{url} (report.full_report_url, not a web address, so not a link)"
    else:
        path = str(out_dir / full_name) if out_dir is not None else full_name
        where = (
            f"the file {path} on the machine that ran spm-sync, not a link (set "
            "report.full_report_url to link to it from here)"
        )
    return FullLink(None, "the full report (see the end of this email)", where)


def _render_html(
    view: ReportView, images: Mapping[str, str], full: FullLink | None, *, inline: bool = True
) -> str:
    html = _ENV.get_template("report.html").render(_context(view, images, full))
    compact = "\n".join(line.strip() for line in html.splitlines() if line.strip())
    if not inline:
        return compact
    return _CLASS_ATTRIBUTE.sub(_keep_media_classes, _INLINER.inline(compact))


def _keep_media_classes(match: re.Match[str]) -> str:
    kept = [name for name in match.group(1).split() if name in MEDIA_CLASSES]
    return f' class="{" ".join(kept)}"' if kept else ""


def _context(view: ReportView, images: Mapping[str, str], full: FullLink | None) -> dict[str, Any]:
    return {"v": view, "r": view.result, "images": images, "full": full if view.truncated else None}


# --- filters ---------------------------------------------------------------------------------


def shorten(text: object, length: int = 110) -> str:
    """Cut at a word boundary and add an ellipsis; titles of any length keep tables readable."""
    value = " ".join(str(text).split())
    if len(value) <= length:
        return value
    cut = value[: length - 1]
    space = cut.rfind(" ")
    if space > length * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ,.;:-") + "…"


def safe_url(url: object) -> str | None:
    """The URL when it is http(s), mailto, or a sibling report file, else None: tracker URLs
    are untrusted, and a javascript: or data: link must not become clickable."""
    if not isinstance(url, str):
        return None
    url = url.strip()
    return url if _SAFE_URL.match(url) or _SIBLING_FILE.match(url) else None


def format_score(value: float | None) -> str:
    return "–" if value is None else f"{value:,.2f}"


def format_value(value: object) -> str:
    """An old/new value of a write: '–' for none, label sets joined."""
    if value is None:
        return "–"
    if isinstance(value, tuple | list):
        return ", ".join(str(part) for part in value) or "(none)"
    if isinstance(value, float):
        return format_count(value) if value.is_integer() else f"{value:,.2f}"
    return str(value)


def pad(value: object, width: int, right: bool = False) -> str:
    text = str(value)
    return text.rjust(width) if right else text.ljust(width)


def day(value: datetime) -> str:
    return f"{value:%d %b %Y}"


def when(value: datetime) -> str:
    return f"{value:%a %d %b %Y, %H:%M} UTC"


def isolate(text: object) -> Markup:
    """`text` (escaped) in its own bidirectional isolate: an Arabic or Hebrew title keeps its
    direction and cannot pull the key or the "· level" note beside it into its own order.
    `dir` rather than `<bdi>`: mail clients that keep only well-known markup keep `dir`."""
    return Markup('<span dir="auto">{}</span>').format(text)


def without_bidi_controls(value: object) -> object:
    """Every `{{ ... }}` output, before escaping: bidirectional controls made visible.
    Markup (a macro's output, an isolated title) keeps its markup: the marker holds no
    character HTML treats specially, so replacing inside it stays safe."""
    if type(value) is str:  # nearly every value: the cheapest test first
        return neutralise_bidi(value)
    if isinstance(value, Markup):
        return Markup(neutralise_bidi(str(value)))
    if value is None or isinstance(value, int | float):
        return value
    return neutralise_bidi(str(value))


def _count(value: float | None) -> str:
    return "–" if value is None else format_count(value)


def _make_environment() -> Environment:
    env = Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=select_autoescape(["html"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=without_bidi_controls,
    )
    env.filters.update(
        short=shorten,
        safe_url=safe_url,
        count=_count,
        pct=format_pct,
        score=format_score,
        value=format_value,
        seconds=format_seconds,
        pad=pad,
        day=day,
        when=when,
        isolate=isolate,
        days=format_days,
    )
    return env


_ENV = _make_environment()
