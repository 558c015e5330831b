"""Settings of the report and of its delivery, as plain dataclasses.

The YAML models live in `spm_sync.config.model` (`report.output_dir`, `report.top_n`,
`report.email.*`); these mirror their names so the pipeline can pass them through with
`ReportOptions.from_config(...)` / `EmailSettings.from_config(...)`, and tests can build them
without a config file.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.errors import HeaderParseError, InvalidHeaderDefect, NonPrintableDefect
from email.headerregistry import AddressHeader, HeaderRegistry
from typing import Any, Literal

from reports.bidi import BIDI_CONTROLS

SmtpSecurity = Literal["starttls", "ssl", "none"]

SUBJECT_FIELDS = (
    "run_id",
    "date",
    "status",
    "alignment_pct",
    "alignment_pct_job_size",
    "orphans",
    "uncovered_key_results",
    "change",
    "outcome",
)
DEFAULT_SUBJECT = "Strategy alignment {date}: {alignment_pct} aligned, {orphans} orphans ({change})"
"""`change`: since the previous completed cycle ("+1.2 pts, 3 new orphans"); `outcome`: a
partial or failed run and what its figures cover, put in front of any subject that does not
place it (`reports.subject`)."""


def subject_problem(subject: str) -> str | None:
    """What is wrong with a subject template (a format string over `SUBJECT_FIELDS`), or None.
    Checked when the config is loaded, so a typo never waits for the report stage of a run."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(subject) if name is not None]
    except ValueError as exc:
        return f"is not a valid format string: {exc}"
    unknown = [name for name in names if name not in SUBJECT_FIELDS]
    if unknown:
        return (
            f"uses unknown placeholder(s) {', '.join(unknown)}; known: {', '.join(SUBJECT_FIELDS)}"
        )
    return None


_HEADERS = HeaderRegistry()
_LINE_BREAKING = frozenset({"Cc", "Zl", "Zp"})
"""Unicode categories of C0/C1 controls (CR, LF, NUL, ...) and of the line and paragraph
separators, which Python's `str.splitlines` (and so the email package) also breaks lines at."""


def mail_address_problem(value: str) -> str | None:
    """What is wrong with one address of the email settings ("pmo@acme.example" or
    "Portfolio Office <pmo@acme.example>"), or None. Checked when the config is loaded: a CR
    or LF would start a new header line (the email package refuses it only when the message
    is built, which failed the whole report stage), a bidirectional control could disguise
    the sender's name, and "a@x, b@y" in one entry is not one address."""
    controls = sorted(
        {ch for ch in value if unicodedata.category(ch) in _LINE_BREAKING or ch in BIDI_CONTROLS}
    )
    if controls:
        named = ", ".join(f"U+{ord(ch):04X}" for ch in controls)
        return f"contains control characters ({named}); expected one address on one line"
    try:
        header = _HEADERS("To", value)
    except (HeaderParseError, IndexError, ValueError):
        return "is not an email address"
    if not isinstance(header, AddressHeader):  # the registry's class for "To"; for mypy
        return "is not an email address"
    addresses = header.addresses
    if len(addresses) > 1:
        return f"is {len(addresses)} addresses, expected one (give each its own entry)"
    broken = any(isinstance(d, InvalidHeaderDefect | NonPrintableDefect) for d in header.defects)
    grouped = any(group.display_name is not None for group in header.groups)
    stray = value.strip()[:1] in (",", ";") or value.strip()[-1:] in (",", ";")
    address = addresses[0] if addresses else None
    if broken or grouped or stray or address is None:
        return "is not an email address"
    if not address.username or not address.domain or " " in address.domain:
        return "is not an email address"
    return None


def _as_mapping(source: object) -> Mapping[str, Any]:
    """A config section as a dict: pydantic models by alias (so `from_` reads as "from")."""
    if isinstance(source, Mapping):
        return source
    dump = getattr(source, "model_dump", None)
    if callable(dump):
        return dump(by_alias=True)
    return vars(source)


@dataclass(frozen=True)
class ReportOptions:
    """What the report shows. `top_n` rows of the WSJF table; coverage colours by threshold."""

    top_n: int = 25
    title: str = "Strategy alignment report"
    full_report_url: str | None = None
    """Where readers of the email find the uncapped report: an intranet URL or a file path;
    one ending in "/" is the output folder and gets this run's file name appended. Without it
    the email names the full file by its name."""
    coverage_green: float = 80.0
    coverage_amber: float = 60.0
    title_length: int = 110
    """Tracker titles longer than this are cut at a word boundary with an ellipsis."""
    max_email_html_bytes: int = 100_000
    """Gmail clips a message whose HTML exceeds about 102 KB; lists are capped to stay under."""

    def __post_init__(self) -> None:
        if self.top_n < 1:
            raise ValueError(f"report.top_n must be at least 1, not {self.top_n}")
        if not 0 <= self.coverage_amber <= self.coverage_green <= 100:
            raise ValueError("coverage thresholds must satisfy 0 <= amber <= green <= 100")
        if self.title_length < 20:
            raise ValueError("title_length must be at least 20 characters")

    @classmethod
    def from_config(cls, report: object, **overrides: Any) -> ReportOptions:
        values = _as_mapping(report)
        known = {name: values[name] for name in ("top_n", "full_report_url") if name in values}
        return cls(**{**known, **overrides})


@dataclass(frozen=True)
class EmailSettings:
    """SMTP delivery, mirroring `report.email` of the config. Secrets are env var names."""

    host: str
    sender: str
    to: Sequence[str]
    port: int = 587
    security: SmtpSecurity = "starttls"
    user_env: str | None = None
    password_env: str | None = None
    subject: str = DEFAULT_SUBJECT
    enabled: bool = True
    timeout_seconds: float = 30.0
    max_attempts: int = 4
    """Tries in all for temporary failures (4xx replies, refused or reset connections)."""
    backoff_seconds: float = 2.0
    cc: Sequence[str] = field(default_factory=tuple)
    allow_plaintext_auth: bool = False
    """Log in even when the connection is not encrypted (`security: none`). Not refused here
    but by the config and, whatever built these settings, again by the sender at delivery."""

    def __post_init__(self) -> None:
        if not self.to:
            raise ValueError("report.email.to must name at least one recipient")
        if self.security not in ("starttls", "ssl", "none"):
            raise ValueError(
                f"report.email.security must be starttls, ssl or none, not {self.security!r}"
            )
        if (self.user_env is None) != (self.password_env is None):
            raise ValueError("report.email.user_env and password_env go together (or neither)")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        problem = subject_problem(self.subject)
        if problem:
            raise ValueError(f"report.email.subject {problem}")
        addresses = [("from", self.sender)]
        addresses += [(f"to[{index}]", address) for index, address in enumerate(self.to)]
        addresses += [(f"cc[{index}]", address) for index, address in enumerate(self.cc)]
        for key, address in addresses:
            problem = mail_address_problem(address)
            if problem:
                raise ValueError(f"report.email.{key}: {address!r} {problem}")

    @classmethod
    def from_config(cls, email: object, **overrides: Any) -> EmailSettings | None:
        """From the `report.email` section (a pydantic model or a dict); None when the
        section is switched off (`enabled: false`), so the report is written but not sent."""
        values = dict(_as_mapping(email))
        if not values.get("enabled", True):
            return None
        sender = values.pop("from", None) or values.pop("from_", None) or values.pop("sender")
        to = values.pop("to")
        names = {
            "host",
            "port",
            "security",
            "user_env",
            "password_env",
            "subject",
            "allow_plaintext_auth",
        }
        known = {name: values[name] for name in names if values.get(name) is not None}
        recipients = (to,) if isinstance(to, str) else tuple(to)
        return cls(sender=sender, to=recipients, **{**known, **overrides})
