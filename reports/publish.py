"""Write the report to the output directory, then mail it: the report's single entry point.

Files come first, so an SMTP outage never loses a report. Each run writes, under a
run-specific stem (`reports.render.report_stem`):
- `<stem>.html`: the capped page, charts by relative file name, "and N more" linking to
- `<stem>-full.html`: every row, uncapped;
- `<stem>.txt`: the plain-text version;
- `<stem>-<chart>.png`: the charts the HTML files show;
- `<stem>.eml`: the complete email as it is (or would be) sent, images included;
- `latest.html`: a copy of the newest `<stem>.html` (a copy, not a symlink, so it survives
  being synced to a share or served from object storage).
Every file is written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import os
import ssl
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from email.message import EmailMessage
from pathlib import Path

from reports.email import (
    Clock,
    DeliveryResult,
    SmtpFactory,
    compose_email,
    default_smtp_factory,
    send_email,
    utc_now,
)
from reports.render import RenderedReport, full_report_filename, render_report, report_stem
from reports.settings import EmailSettings, ReportOptions
from spm_sync.results import CycleResult

LATEST = "latest.html"


@dataclass(frozen=True)
class ReportPaths:
    html: Path
    full_html: Path
    text: Path
    images: tuple[Path, ...]
    latest: Path
    eml: Path | None = None


@dataclass(frozen=True)
class PublishedReport:
    rendered: RenderedReport
    paths: ReportPaths
    delivery: DeliveryResult


def write_report(rendered: RenderedReport, out_dir: Path) -> ReportPaths:
    """Write the HTML, full HTML, text and chart files and refresh `latest.html`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    images = tuple(_write_atomic(out_dir / image.filename, image.png) for image in rendered.images)
    html = _write_atomic(out_dir / f"{rendered.stem}.html", rendered.file_html.encode("utf-8"))
    return ReportPaths(
        html=html,
        full_html=_write_atomic(
            out_dir / rendered.full_filename, rendered.full_html.encode("utf-8")
        ),
        text=_write_atomic(out_dir / f"{rendered.stem}.txt", rendered.text.encode("utf-8")),
        images=images,
        latest=_write_atomic(out_dir / LATEST, rendered.file_html.encode("utf-8")),
    )


def write_eml(message: EmailMessage, out_dir: Path, stem: str) -> Path:
    return _write_atomic(out_dir / f"{stem}.eml", bytes(message))


def publish_report(
    result: CycleResult,
    out_dir: Path,
    *,
    options: ReportOptions | None = None,
    email: EmailSettings | None = None,
    send: bool = True,
    smtp_factory: SmtpFactory = default_smtp_factory,
    ssl_context: ssl.SSLContext | None = None,
    clock: Clock = utc_now,
    sleep: Callable[[float], None] = time.sleep,
) -> PublishedReport:
    """Render, write every file, then send when `email` is enabled and `send` is true.

    Without `options.full_report_url`, the email points readers at the full report by its
    absolute path in `out_dir`, which is where an operator will look for it.
    """
    options = options or ReportOptions()
    if options.full_report_url is None:
        full_path = (out_dir / full_report_filename(report_stem(result))).resolve()
        options = replace(options, full_report_url=str(full_path))
    rendered = render_report(result, options)
    paths = write_report(rendered, out_dir)
    message = compose_email(rendered, email, clock)
    paths = replace(paths, eml=write_eml(message, out_dir, rendered.stem))
    if email is None:
        delivery = DeliveryResult("skipped", "email is not configured or switched off")
    elif not send:
        delivery = DeliveryResult("skipped", "sending was switched off for this run")
    else:
        delivery = send_email(
            message, email, smtp_factory=smtp_factory, ssl_context=ssl_context, sleep=sleep
        )
    return PublishedReport(rendered=rendered, paths=paths, delivery=delivery)


def _write_atomic(path: Path, content: bytes) -> Path:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
