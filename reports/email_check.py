"""The email's own online check, for `spm-sync check --online`: connect to the SMTP server,
EHLO, STARTTLS and log in exactly as a run would (the same factory and the same refusal to
log in over an unencrypted connection), and send nothing."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator

from reports.email import SmtpFactory, refuse_login_in_clear
from reports.settings import EmailSettings
from spm_sync.core.checks import CheckLine
from spm_sync.core.errors import describe
from spm_sync.core.secrets import read_secret


def smtp_checks(settings: EmailSettings, smtp_factory: SmtpFactory) -> Iterator[CheckLine]:
    """Connect, EHLO, STARTTLS and log in as a run would; nothing is sent."""
    where = f"SMTP {settings.host}:{settings.port} ({settings.security})"
    steps = []
    try:
        with smtp_factory(settings, ssl.create_default_context()) as smtp:
            smtp.ehlo()
            steps.append("EHLO")
            if settings.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
                steps.append("STARTTLS")
            if settings.user_env and settings.password_env:
                refuse_login_in_clear(smtp, settings)
                smtp.login(read_secret(settings.user_env), read_secret(settings.password_env))
                steps.append("login")
    except (OSError, smtplib.SMTPException, LookupError) as error:
        done = f" after {', '.join(steps)}" if steps else ""
        yield CheckLine(
            False,
            f"{where}: failed{done}: {describe(error)}",
            "check report.email host, port, security and the login's environment variables",
        )
        return
    yield CheckLine(True, f"{where} answers ({', '.join(steps)} ok)")
