"""Write the report to the output directory, then mail it: the report's single entry point.

Files come first, so an SMTP outage never loses a report. Each run writes, under a
run-specific stem (`reports.render.report_stem`):
- `<stem>.html`: the capped page, charts by relative file name, "and N more" linking to
- `<stem>-full.html`: every row, uncapped;
- `<stem>.txt`: the plain-text version;
- `<stem>-<chart>.png`: the charts the HTML files show;
- `<stem>.eml`: the complete email as it is (or would be) sent, images included;
- `latest.html`: a copy of `<stem>.html` of the newest completed sync cycle (a copy, not a
  symlink, so it survives being synced to a share or served from object storage). Only that
  run may replace it: re-rendering an older run, an undo (dry run or not) or a failed cycle
  writes its own files and leaves `latest.html` alone (`is_latest_candidate`; the caller that
  knows the store says whether a re-rendered run is still the newest).
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
from reports.render import RenderedReport, render_report
from reports.settings import EmailSettings, ReportOptions
from spm_sync.core.results import CycleResult

LATEST = "latest.html"


@dataclass(frozen=True)
class ReportPaths:
    html: Path
    full_html: Path
    text: Path
    images: tuple[Path, ...]
    latest: Path | None
    """`latest.html` when this run refreshed it; None when it was left alone."""
    eml: Path | None = None


@dataclass(frozen=True)
class PublishedReport:
    rendered: RenderedReport
    paths: ReportPaths
    delivery: DeliveryResult


def is_latest_candidate(result: CycleResult) -> bool:
    """Whether this run's report may become `latest.html`: a sync cycle that completed (ok or
    partial). An undo restores a past run and aligns nothing; a failed cycle has no figures."""
    return result.undoes is None and result.status != "failed"


def write_report(rendered: RenderedReport, out_dir: Path, *, latest: bool = True) -> ReportPaths:
    """Write the HTML, full HTML, text and chart files, and refresh `latest.html` when
    `latest` says this run is the newest completed cycle."""
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
        latest=(
            _write_atomic(out_dir / LATEST, rendered.file_html.encode("utf-8")) if latest else None
        ),
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
    as_latest: bool | None = None,
) -> PublishedReport:
    """Render, write every file, then send when `email` is enabled and `send` is true.

    `as_latest`: whether this run's page becomes `latest.html`; None decides from the document
    alone (`is_latest_candidate`), which is right for the run that just finished. Re-rendering
    a stored run must say, since only the store knows whether a newer cycle finished since.
    Without `options.full_report_url` the email says where the full file is on the machine
    that wrote it, and that it is no link (`reports.render.full_link`).
    """
    options = options or ReportOptions()
    rendered = render_report(result, options, out_dir=out_dir.resolve())
    latest = is_latest_candidate(result) if as_latest is None else as_latest
    paths = write_report(rendered, out_dir, latest=latest and is_latest_candidate(result))
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
