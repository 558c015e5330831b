"""Compose the report email and deliver it over SMTP.

The message is `multipart/alternative` (plain text, then HTML) whose HTML part is
`multipart/related` with the charts as inline PNG parts, each with the Content-ID the HTML
references as `cid:` (RFC 2387, RFC 2392) — the layout every mail client shows inline.

Delivery never raises for SMTP problems: a nightly job must not lose the report because the
mail relay is down. The report files are written before sending (see `reports.publish`), and
`send_email` returns a `DeliveryResult` saying sent/failed and why. Temporary failures (4xx
replies per RFC 5321 §4.2.1, refused or reset connections, a dropped session) are retried with
jittered exponential backoff; permanent ones (5xx, bad credentials, TLS errors, a server
without STARTTLS) are not. Credentials come from environment variables named in config and
never appear in a log line or a result, nor on the wire in clear: the login is only sent
over TLS, unless `allow_plaintext_auth` says otherwise (the config refuses `security: none`
with a login without it; this module refuses again, whatever built the settings).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Literal

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from reports.bidi import neutralise_bidi
from reports.render import RenderedReport
from reports.settings import DEFAULT_SUBJECT, EmailSettings
from reports.subject import subject_line
from spm_sync.core.secrets import read_secret

log = logging.getLogger(__name__)

SmtpFactory = Callable[[EmailSettings, ssl.SSLContext], smtplib.SMTP]
Clock = Callable[[], datetime]
NO_REPLY = "spm-sync@localhost"


class PlaintextLoginRefused(smtplib.SMTPException):
    """The login would cross an unencrypted connection, and `allow_plaintext_auth` is off."""


PLAINTEXT_LOGIN = (
    "refusing to send the SMTP login over an unencrypted connection; use security: starttls "
    "or ssl, or set report.email.allow_plaintext_auth: true"
)


@dataclass(frozen=True)
class DeliveryResult:
    status: Literal["sent", "failed", "skipped"]
    reason: str | None = None
    attempts: int = 0
    recipients: tuple[str, ...] = ()
    refused: Mapping[str, str] = field(default_factory=dict)
    """Recipients the server refused while it accepted others (the message was still sent)."""
    message_id: str | None = None

    @property
    def sent(self) -> bool:
        return self.status == "sent"


def utc_now() -> datetime:
    return datetime.now(UTC)


def compose_email(
    rendered: RenderedReport, settings: EmailSettings | None, clock: Clock = utc_now
) -> EmailMessage:
    """The complete message. Without settings (email not configured) it has no recipients and
    is only written to disk as the `.eml` copy of the report."""
    message = EmailMessage()
    template = settings.subject if settings else DEFAULT_SUBJECT
    subject = subject_line(template, dict(rendered.subject_fields))
    message["Subject"] = neutralise_bidi(subject)
    sender = settings.sender if settings else NO_REPLY
    message["From"] = sender
    if settings:
        message["To"] = ", ".join(settings.to)
        if settings.cc:
            message["Cc"] = ", ".join(settings.cc)
    message["Date"] = format_datetime(clock())
    message["Message-ID"] = make_msgid(idstring="spm-sync", domain=_domain(message, sender))
    message["X-Spm-Sync-Run"] = rendered.run_id
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    # add_alternative made the message multipart/alternative: [text/plain, text/html].
    html_part = list(message.iter_parts())[1]
    for image in rendered.images:
        html_part.add_related(
            image.png,
            maintype="image",
            subtype="png",
            cid=f"<{image.cid}>",
            filename=image.filename,
            disposition="inline",
        )
    return message


def _domain(message: EmailMessage, sender: str) -> str:
    """The sender's domain for the Message-ID (not the host name, which make_msgid would look
    up through DNS and which leaks the machine's name)."""
    addresses: tuple[Address, ...] = message["From"].addresses
    domain = addresses[0].domain if addresses else ""
    return domain or sender.rpartition("@")[2] or "localhost"


def default_smtp_factory(settings: EmailSettings, context: ssl.SSLContext) -> smtplib.SMTP:
    """Connects; `security: ssl` is implicit TLS (port 465), the others start in plain text."""
    if settings.security == "ssl":
        return smtplib.SMTP_SSL(
            settings.host, settings.port, timeout=settings.timeout_seconds, context=context
        )
    return smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_seconds)


def send_email(
    message: EmailMessage,
    settings: EmailSettings,
    *,
    smtp_factory: SmtpFactory = default_smtp_factory,
    ssl_context: ssl.SSLContext | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryResult:
    """Send with retries on temporary failures; returns the outcome instead of raising."""
    recipients = (*settings.to, *settings.cc)
    message_id = str(message["Message-ID"] or "") or None
    if not settings.enabled:
        return DeliveryResult("skipped", "email is disabled in config", 0, recipients)
    try:
        credentials = _credentials(settings)
    except LookupError as error:
        return DeliveryResult("failed", f"cannot log in to SMTP: {error}", 0, recipients)
    if credentials and settings.security == "none" and not settings.allow_plaintext_auth:
        # Refused before connecting: a login is configured because the server wants one,
        # so sending without it would only earn a 530 after the connection is made.
        log.error("report email not sent: %s", PLAINTEXT_LOGIN)
        return DeliveryResult("failed", PLAINTEXT_LOGIN, 0, recipients)
    context = ssl_context or ssl.create_default_context()
    retrying = Retrying(
        stop=stop_after_attempt(settings.max_attempts),
        wait=wait_exponential_jitter(
            multiplier=settings.backoff_seconds, max=60.0, jitter=settings.backoff_seconds
        ),
        retry=retry_if_exception(is_temporary),
        sleep=sleep,
        reraise=True,
        before_sleep=_log_retry,
    )
    try:
        refused = retrying(_deliver_once, message, settings, credentials, smtp_factory, context)
    except (smtplib.SMTPException, OSError, UnicodeEncodeError) as error:
        attempts = retrying.statistics.get("attempt_number", 1)
        log.error("report email not sent after %d attempt(s): %s", attempts, describe(error))
        return DeliveryResult("failed", describe(error), attempts, recipients, {}, message_id)
    attempts = retrying.statistics.get("attempt_number", 1)
    refused_text = {address: f"{code} {_text(reply)}" for address, (code, reply) in refused.items()}
    reason = f"refused by the server: {', '.join(refused_text)}" if refused_text else None
    log.info("report email sent to %d recipient(s)", len(recipients) - len(refused_text))
    return DeliveryResult("sent", reason, attempts, recipients, refused_text, message_id)


def _credentials(settings: EmailSettings) -> tuple[str, str] | None:
    if settings.user_env is None or settings.password_env is None:
        return None
    return read_secret(settings.user_env), read_secret(settings.password_env)


def _deliver_once(
    message: EmailMessage,
    settings: EmailSettings,
    credentials: tuple[str, str] | None,
    smtp_factory: SmtpFactory,
    context: ssl.SSLContext,
) -> dict[str, tuple[int, bytes]]:
    with smtp_factory(settings, context) as smtp:
        smtp.ehlo()
        if settings.security == "starttls":
            # Raises SMTPNotSupportedError when the server does not offer STARTTLS: never fall
            # back to sending credentials and the report in plain text.
            smtp.starttls(context=context)
            smtp.ehlo()
        if credentials is not None:
            refuse_login_in_clear(smtp, settings)
            smtp.login(*credentials)
        return smtp.send_message(message)


def refuse_login_in_clear(smtp: smtplib.SMTP, settings: EmailSettings) -> None:
    """Checks the socket itself rather than trusting `security`: a factory (or a future code
    path) that hands over a plain connection must not get the password in clear."""
    if not isinstance(smtp.sock, ssl.SSLSocket) and not settings.allow_plaintext_auth:
        raise PlaintextLoginRefused(PLAINTEXT_LOGIN)


def is_temporary(error: BaseException) -> bool:
    """4xx replies, dropped sessions and refused/reset/timed-out connections."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        return bool(codes) and all(400 <= code < 500 for code in codes)
    if isinstance(error, smtplib.SMTPResponseException):
        return 400 <= error.smtp_code < 500
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return True
    return isinstance(error, ConnectionRefusedError | ConnectionResetError | TimeoutError)


def describe(error: BaseException) -> str:
    """A reason for the report and the log: the server's reply, never our credentials."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        refused = ", ".join(
            f"{address} ({code} {_text(reply)})"
            for address, (code, reply) in error.recipients.items()
        )
        return f"all recipients refused: {refused}"
    if isinstance(error, smtplib.SMTPResponseException):
        return f"SMTP {error.smtp_code}: {_text(error.smtp_error)}"
    if isinstance(error, PlaintextLoginRefused):
        return str(error)
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return f"the SMTP server does not support this: {error}"
    if isinstance(error, UnicodeEncodeError):
        # smtplib encodes AUTH LOGIN/PLAIN credentials as ASCII.
        return "SMTP login needs ASCII credentials; the user or password has other characters"
    return f"{type(error).__name__}: {error}"


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    log.warning(
        "report email attempt %d failed (%s); retrying in %.1f s",
        state.attempt_number,
        describe(error) if error else "unknown error",
        wait,
    )
