"""Config sections that stand on their own: the store, the report and its email, WIP limits.

Also the value types shared by the sections (level and status-category names as users write
them) and the rule for relative paths: they are resolved against the config file's folder,
passed in as the validation context `base_dir` by `spm_sync.config.model.read_config`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from connectors.settings import StrictModel
from reports.settings import mail_address_problem, subject_problem
from spm_sync.config.validation import scalar_text
from spm_sync.core.domain import Level, StatusCategory
from spm_sync.core.secrets import EnvName, read_secret

SUPPORTED_BACKENDS = ("sqlite", "postgresql")
DEFAULT_SMTP_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


def resolve_path(value: Path, info: ValidationInfo) -> Path:
    """`value` relative to the config file's folder (when the config came from a file)."""
    base = (info.context or {}).get("base_dir")
    if base is None or value.is_absolute():
        return value
    return (Path(base) / value.expanduser()).absolute()


def parse_level(value: object) -> object:
    if isinstance(value, str):
        try:
            return Level.parse(value)
        except KeyError:
            allowed = ", ".join(member.label for member in Level)
            raise ValueError(f"{value!r} is not a level, expected one of: {allowed}") from None
    return value


def parse_status_category(value: object) -> object:
    """Accept "In Progress", "in_progress", "in-progress" and "inprogress" alike."""
    if isinstance(value, str):
        wanted = value.replace("_", " ").replace("-", " ").strip().lower()
        for member in StatusCategory:
            if wanted.replace(" ", "") == member.value.lower().replace(" ", ""):
                return member
        allowed = ", ".join(member.value for member in StatusCategory)
        raise ValueError(f"{value!r} is not a status category, expected one of: {allowed}")
    return value


LevelName = Annotated[Level, BeforeValidator(parse_level)]
StatusCategoryName = Annotated[StatusCategory, BeforeValidator(parse_status_category)]


class StoreSettings(StrictModel):
    url: str = Field("sqlite:///spm-sync.db", validate_default=True)
    """SQLAlchemy URL. `postgresql://` uses psycopg 3. Never with a password in it."""
    db_schema: str | None = Field(None, alias="schema", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """PostgreSQL schema for every table (created if missing); unset = the search_path."""
    password_env: EnvName | None = None
    """Environment variable with the database password."""

    @field_validator("url")
    @classmethod
    def _database_url(cls, value: str, info: ValidationInfo) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                f"{_password_masked(value)!r} is not a database URL, e.g. sqlite:///spm-sync.db "
                "or postgresql://spm@db.example.com/spm"
            ) from None
        if url.get_backend_name() not in SUPPORTED_BACKENDS:
            raise ValueError(
                f"database {url.get_backend_name()!r} is not supported (sqlite, postgresql)"
            )
        if url.password is not None:
            raise ValueError(
                "the URL must not contain a password: put it in an environment variable and "
                "name that variable in store.password_env"
            )
        resolved = _resolve_sqlite_path(url, info)
        return value if resolved is url else resolved.render_as_string(hide_password=False)

    def connect_url(self) -> URL:
        """The URL to connect with: the password read from `password_env` when set."""
        url = make_url(self.url)
        if self.password_env:
            url = url.set(password=read_secret(self.password_env))
        return url


def _password_masked(value: str) -> str:
    """`value` with the password of a `user:password@host` part replaced by ***, for a message
    about a URL too broken to parse (which may still carry a pasted password)."""
    head, at, host = value.rpartition("@")
    if not at:
        return value
    before, slash, user_info = head.rpartition("/")
    user, colon, _ = user_info.partition(":")
    return f"{before}{slash}{user}{colon}{'***' if colon else ''}@{host}"


def _resolve_sqlite_path(url: URL, info: ValidationInfo) -> URL:
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return url
    if database.startswith("file:"):
        return url
    return url.set(database=str(resolve_path(Path(database), info)))


def _mail_address(value: str) -> str:
    problem = mail_address_problem(value)
    if problem:
        raise ValueError(f"{value!r} {problem}")
    return value


MailAddress = Annotated[str, Field(min_length=3), AfterValidator(_mail_address)]
"""One address, checked per entry so a problem is reported at its index (`to[1]`)."""


class EmailSettings(StrictModel):
    enabled: bool = False
    host: str | None = None
    port: int = Field(587, ge=1, le=65535)
    """Default by `security`: 587 for starttls, 465 for ssl, 25 for none."""
    security: Literal["starttls", "ssl", "none"] = "starttls"
    user_env: EnvName | None = None
    password_env: EnvName | None = None
    allow_plaintext_auth: bool = False
    """Let `security: none` log in with user_env/password_env although the password then
    crosses the network readable by anyone on the path; for a relay on the same host."""
    sender: MailAddress | None = Field(None, alias="from")
    to: list[MailAddress] = Field(default_factory=list)
    subject: str | None = Field(None, min_length=1)
    """Subject line, a format string over the run's headline numbers (see the example config);
    unset = the report's own subject (date, alignment %, orphans)."""

    @model_validator(mode="before")
    @classmethod
    def _port_by_security(cls, data: Any) -> Any:
        if isinstance(data, dict) and "port" not in data:
            security = data.get("security", "starttls")
            if security in DEFAULT_SMTP_PORTS:
                return {**data, "port": DEFAULT_SMTP_PORTS[security]}
        return data

    @field_validator("subject")
    @classmethod
    def _subject_format(cls, value: str | None) -> str | None:
        problem = None if value is None else subject_problem(value)
        if problem:
            raise ValueError(f"{value!r} {problem}")
        return value

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> EmailSettings:
        if (self.user_env is None) != (self.password_env is None):
            raise ValueError("give both user_env and password_env, or neither (no SMTP login)")
        if self.enabled:
            missing = [
                key
                for key, value in (("host", self.host), ("from", self.sender), ("to", self.to))
                if not value
            ]
            if missing:
                raise ValueError(f"enabled email needs {', '.join(missing)}")
        return self

    @model_validator(mode="after")
    def _no_login_in_clear(self) -> EmailSettings:
        """smtplib sends AUTH PLAIN/LOGIN as base64 of the password: over `security: none`
        anyone on the path reads it. Refused even while email is off, so switching it on
        later cannot start leaking the password."""
        if self.security == "none" and self.user_env and not self.allow_plaintext_auth:
            raise ValueError(
                "security: none would send the SMTP login (user_env/password_env) unencrypted; "
                "use security: starttls or ssl, or set allow_plaintext_auth: true for a relay "
                "on the same host"
            )
        return self


class ReportSettings(StrictModel):
    output_dir: Path = Field(Path("spm-sync-reports"), validate_default=True)
    """Folder for the report files."""
    top_n: int = Field(25, ge=1, le=1000)
    """Rows in the report's longest tables (WSJF ranking, orphans)."""
    full_report_url: str | None = None
    """Where email readers find the full report (intranet URL or shared path)."""
    email: EmailSettings = EmailSettings()

    @field_validator("output_dir")
    @classmethod
    def _resolve(cls, value: Path, info: ValidationInfo) -> Path:
        return resolve_path(value, info)


class WipLimit(StrictModel):
    """At most `limit` items of `levels` in `status_category` for one team or value stream."""

    team: str = Field(min_length=1)
    status_category: StatusCategoryName = StatusCategory.IN_PROGRESS
    levels: list[LevelName] = Field(
        default_factory=lambda: [Level.EPIC, Level.FEATURE], min_length=1
    )
    limit: int = Field(ge=0)

    _text = field_validator("team", mode="before")(scalar_text)
