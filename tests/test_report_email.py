"""Email delivery through a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import logging
import re
import shutil
import smtplib
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from reports.email import DeliveryResult, default_smtp_factory, is_temporary
from reports.publish import publish_report
from reports.settings import EmailSettings
from spm_sync.cli.demo import LoopbackSmtp
from spm_sync.core.results import Headline
from tests.report_fixtures import build_cycle_result
from tests.test_report_render import LABELS, Page, _number

SENT_AT = datetime(2026, 3, 2, 6, 15, 2, tzinfo=UTC)


@dataclass
class Mailbox:
    """An aiosmtpd handler: stores what it receives; can answer DATA with scripted replies."""

    replies: list[str] = field(default_factory=list)
    received: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    data_attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope) -> str:
        with self.lock:
            self.data_attempts += 1
            if self.replies:
                return self.replies.pop(0)
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self.received.append(message)  # type: ignore[arg-type]
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 2.0.0 queued"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    controller = LoopbackSmtp(box, hostname="127.0.0.1", port=0)
    controller.start()
    try:
        yield box, controller.port
    finally:
        controller.stop()


def _settings(port: int, **changes: object) -> EmailSettings:
    values: dict[str, object] = dict(
        host="127.0.0.1",
        port=port,
        security="none",
        sender="Portfolio Office <spm-sync@acme.example>",
        to=("vp-product@acme.example", "pmo@acme.example"),
        timeout_seconds=5.0,
        backoff_seconds=0.01,
    )
    values.update(changes)
    return EmailSettings(**values)  # type: ignore[arg-type]


def _publish(tmp_path: Path, settings: EmailSettings, **kwargs: object):  # type: ignore[no-untyped-def]
    sleeps: list[float] = []
    published = publish_report(
        build_cycle_result(),
        tmp_path,
        email=settings,
        clock=lambda: SENT_AT,
        sleep=sleeps.append,
        **kwargs,  # type: ignore[arg-type]
    )
    return published, sleeps


def test_report_arrives_with_headers_parts_and_inline_chart(
    mailbox: tuple[Mailbox, int], tmp_path: Path
) -> None:
    box, port = mailbox
    published, sleeps = _publish(tmp_path, _settings(port))
    assert published.delivery.status == "sent" and published.delivery.attempts == 1
    assert sleeps == []
    assert len(box.received) == 1
    message = box.received[0]
    assert message["From"] == "Portfolio Office <spm-sync@acme.example>"
    assert message["To"] == "vp-product@acme.example, pmo@acme.example"
    assert box.envelopes[0] == (
        "spm-sync@acme.example",
        ["vp-product@acme.example", "pmo@acme.example"],
    )
    assert message["Subject"] == (
        "Strategy alignment 2026-03-02: 41.9% aligned, 18 orphans "
        "(+2.5 pts, 3 new orphans, 6 resolved)"
    )
    assert parsedate_to_datetime(message["Date"]) == SENT_AT
    assert re.fullmatch(r"<[^<>@\s]+@acme\.example>", message["Message-ID"])
    assert message["Message-ID"] == published.delivery.message_id
    assert message["X-Spm-Sync-Run"] == "run-100"

    assert message.get_content_type() == "multipart/alternative"
    text_part, related = message.get_payload()  # type: ignore[misc]
    assert text_part.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html_part, *images = related.get_payload()
    assert html_part.get_content_type() == "text/html"
    assert [image.get_content_type() for image in images] == ["image/png", "image/png"]

    html = html_part.get_content()
    referenced = re.findall(r'src="cid:([^"]+)"', html)
    attached = [image["Content-ID"].strip("<>") for image in images]
    assert referenced == attached
    for image, path in zip(images, published.paths.images, strict=True):
        assert image.get_content_disposition() == "inline"
        png = image.get_content()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert png == path.read_bytes()
    assert len(html.encode("utf-8")) < 100_000


def test_received_headline_figures_equal_the_cycle_result(
    mailbox: tuple[Mailbox, int], tmp_path: Path
) -> None:
    box, port = mailbox
    _publish(tmp_path, _settings(port))
    result = build_cycle_result()
    message = box.received[0]
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    figures = Page(html).figures
    for name in Headline.model_fields:
        value = getattr(result.headline, name)
        expected = round(value, 1) if name.startswith("alignment_pct") else value
        assert _number(figures[name]) == expected, name
        line = re.search(rf"^  {re.escape(LABELS[name])}:\s+(\S+)", text, re.MULTILINE)
        assert line and _number(line.group(1)) == expected, name


def test_temporary_failure_is_retried_then_sent(
    mailbox: tuple[Mailbox, int], tmp_path: Path
) -> None:
    box, port = mailbox
    box.replies = ["451 4.3.0 Mail server temporarily rejected message", "421 4.7.0 Try later"]
    published, sleeps = _publish(tmp_path, _settings(port))
    assert published.delivery.status == "sent"
    assert published.delivery.attempts == 3
    assert box.data_attempts == 3 and len(box.received) == 1
    assert len(sleeps) == 2 and all(0 < wait <= 60 for wait in sleeps)


def test_refused_connection_is_retried(mailbox: tuple[Mailbox, int], tmp_path: Path) -> None:
    box, port = mailbox
    closed = _closed_port()
    calls: list[int] = []

    def first_refused(settings: EmailSettings, context: ssl.SSLContext) -> smtplib.SMTP:
        target = closed if not calls else port
        calls.append(target)
        return smtplib.SMTP("127.0.0.1", target, timeout=5)

    published, sleeps = _publish(tmp_path, _settings(port), smtp_factory=first_refused)
    assert published.delivery.status == "sent" and published.delivery.attempts == 2
    assert calls == [closed, port] and len(sleeps) == 1
    assert len(box.received) == 1


def test_permanent_failure_keeps_the_report_and_says_why(
    mailbox: tuple[Mailbox, int], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    box, port = mailbox
    box.replies = ["554 5.7.1 Message rejected: relay access denied"]
    with caplog.at_level(logging.WARNING):
        published, sleeps = _publish(tmp_path, _settings(port))
    delivery = published.delivery
    assert delivery.status == "failed" and delivery.attempts == 1 and sleeps == []
    assert delivery.reason == "SMTP 554: 5.7.1 Message rejected: relay access denied"
    assert box.received == []
    for path in (published.paths.html, published.paths.full_html, published.paths.text):
        assert path.exists() and path.stat().st_size > 1000
    assert published.paths.eml is not None
    saved = email.message_from_bytes(published.paths.eml.read_bytes(), policy=email.policy.default)
    assert saved["Subject"].startswith("Strategy alignment 2026-03-02")
    assert "relay access denied" in caplog.text


def test_retries_are_bounded(mailbox: tuple[Mailbox, int], tmp_path: Path) -> None:
    box, port = mailbox
    box.replies = ["451 4.3.0 busy"] * 10
    published, sleeps = _publish(tmp_path, _settings(port, max_attempts=3))
    assert published.delivery.status == "failed" and published.delivery.attempts == 3
    assert published.delivery.reason == "SMTP 451: 4.3.0 busy"
    assert box.data_attempts == 3 and len(sleeps) == 2


def test_login_reads_credentials_from_env_and_never_logs_them(
    mailbox: tuple[Mailbox, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, _ = mailbox
    seen: list[tuple[bytes, bytes]] = []

    def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        seen.append((auth_data.login, auth_data.password))
        ok = auth_data.password == b"s3cret-pw"
        return AuthResult(success=ok, handled=False)  # unhandled failure: aiosmtpd answers 535

    box = Mailbox()
    controller = LoopbackSmtp(
        box,
        hostname="127.0.0.1",
        port=0,
        authenticator=authenticator,
        auth_require_tls=False,
    )
    controller.start()
    try:
        monkeypatch.setenv("SMTP_USER_T", "reporter")
        monkeypatch.setenv("SMTP_PASSWORD_T", "s3cret-pw")
        settings = _settings(
            controller.port,
            user_env="SMTP_USER_T",
            password_env="SMTP_PASSWORD_T",
            allow_plaintext_auth=True,  # a loopback server without TLS
        )
        with caplog.at_level(logging.DEBUG):
            published, _ = _publish(tmp_path, settings)
        assert published.delivery.status == "sent"
        assert seen == [(b"reporter", b"s3cret-pw")]
        assert len(box.received) == 1

        monkeypatch.setenv("SMTP_PASSWORD_T", "wrong-password")
        with caplog.at_level(logging.DEBUG):
            failed, sleeps = _publish(tmp_path, settings)
        assert failed.delivery.status == "failed" and failed.delivery.reason.startswith("SMTP 535")
        assert sleeps == []
        monkeypatch.setenv("SMTP_PASSWORD_T", "s3cret-é")
        with caplog.at_level(logging.DEBUG):
            unencodable, _ = _publish(tmp_path, settings)
        assert unencodable.delivery.status == "failed"
        assert "ASCII credentials" in (unencodable.delivery.reason or "")
        assert "s3cret" not in caplog.text and "wrong-password" not in caplog.text
        assert "s3cret" not in repr(published) + repr(failed) + repr(unencodable)
    finally:
        controller.stop()


def test_missing_secret_fails_clearly_without_contacting_the_server(
    mailbox: tuple[Mailbox, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box, port = mailbox
    monkeypatch.delenv("SMTP_NOT_SET_USER", raising=False)
    settings = _settings(port, user_env="SMTP_NOT_SET_USER", password_env="SMTP_NOT_SET_PW")
    published, _ = _publish(tmp_path, settings)
    assert published.delivery.status == "failed"
    assert "SMTP_NOT_SET_USER is not set" in (published.delivery.reason or "")
    assert box.data_attempts == 0 and published.paths.html.exists()


def test_disabled_or_not_sent_is_skipped(mailbox: tuple[Mailbox, int], tmp_path: Path) -> None:
    box, port = mailbox
    disabled, _ = _publish(tmp_path, _settings(port, enabled=False))
    assert disabled.delivery == DeliveryResult(
        "skipped", "email is disabled in config", 0, ("vp-product@acme.example", "pmo@acme.example")
    )
    not_sent, _ = _publish(tmp_path, _settings(port), send=False)
    assert not_sent.delivery.status == "skipped"
    assert box.data_attempts == 0


# --- TLS -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command line (the
    project's dependencies do not include the `cryptography` package)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl command not found: cannot make a test certificate for TLS")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert),
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


def _server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*map(str, certificate))
    return context


def test_starttls_with_verified_certificate(certificate: tuple[Path, Path], tmp_path: Path) -> None:
    box = Mailbox()
    controller = LoopbackSmtp(
        box,
        hostname="127.0.0.1",
        port=0,
        tls_context=_server_context(certificate),
        require_starttls=True,
    )
    controller.start()
    try:
        client = ssl.create_default_context(cafile=str(certificate[0]))
        settings = _settings(controller.port, security="starttls")
        published, _ = _publish(tmp_path, settings, ssl_context=client)
        assert published.delivery.status == "sent", published.delivery.reason
        assert len(box.received) == 1

        untrusted, sleeps = _publish(tmp_path, settings)  # system CAs do not trust it
        assert untrusted.delivery.status == "failed" and sleeps == []
        assert "CERTIFICATE_VERIFY_FAILED" in (untrusted.delivery.reason or "")
    finally:
        controller.stop()


def test_implicit_tls(certificate: tuple[Path, Path], tmp_path: Path) -> None:
    box = Mailbox()
    controller = LoopbackSmtp(
        box, hostname="127.0.0.1", port=0, ssl_context=_server_context(certificate)
    )
    controller.start()
    try:
        client = ssl.create_default_context(cafile=str(certificate[0]))
        settings = _settings(controller.port, security="ssl")
        published, _ = _publish(tmp_path, settings, ssl_context=client)
        assert published.delivery.status == "sent", published.delivery.reason
        assert len(box.received) == 1
    finally:
        controller.stop()


def test_starttls_required_but_not_offered_never_falls_back_to_plain_text(
    mailbox: tuple[Mailbox, int], tmp_path: Path
) -> None:
    box, port = mailbox
    published, sleeps = _publish(tmp_path, _settings(port, security="starttls"))
    assert published.delivery.status == "failed" and sleeps == []
    assert "STARTTLS" in (published.delivery.reason or "")
    assert box.data_attempts == 0


def test_factory_picks_the_transport_by_security() -> None:
    context = ssl.create_default_context()
    plain = _settings(_closed_port(), security="starttls")
    with pytest.raises(ConnectionRefusedError):
        default_smtp_factory(plain, context)
    assert issubclass(smtplib.SMTP_SSL, smtplib.SMTP)


def test_temporary_and_permanent_errors() -> None:
    assert is_temporary(smtplib.SMTPDataError(451, b"later"))
    assert is_temporary(smtplib.SMTPServerDisconnected("gone"))
    assert is_temporary(ConnectionResetError())
    assert is_temporary(smtplib.SMTPRecipientsRefused({"a@b": (450, b"mailbox busy")}))
    assert not is_temporary(smtplib.SMTPRecipientsRefused({"a@b": (550, b"no such user")}))
    assert not is_temporary(smtplib.SMTPAuthenticationError(535, b"bad credentials"))
    assert not is_temporary(ssl.SSLCertVerificationError("bad cert"))


def test_settings_validate_what_a_user_can_get_wrong() -> None:
    with pytest.raises(ValueError, match="at least one recipient"):
        _settings(25, to=())
    with pytest.raises(ValueError, match="starttls, ssl or none"):
        _settings(25, security="tls")
    with pytest.raises(ValueError, match="go together"):
        _settings(25, user_env="ONLY_USER")
    with pytest.raises(ValueError, match="unknown placeholder"):
        _settings(25, subject="Report {when}")
    config = {
        "host": "smtp.acme.example",
        "security": "ssl",
        "from": "a@acme.example",
        "to": ["b@acme.example"],
        "user_env": "U",
        "password_env": "P",
        "enabled": True,
    }
    settings = EmailSettings.from_config(config)
    assert settings is not None
    assert (settings.sender, settings.to, settings.port) == (
        "a@acme.example",
        ("b@acme.example",),
        587,
    )
    assert EmailSettings.from_config({**config, "enabled": False}) is None


def test_settings_from_the_config_model() -> None:
    from spm_sync.config.sections import EmailSettings as EmailSection

    section = EmailSection.model_validate(
        {"enabled": True, "host": "smtp.acme.example", "security": "ssl",
         "from": "PMO <pmo@acme.example>", "to": ["vp@acme.example"], "subject": "Report {date}"}
    )  # fmt: skip
    settings = EmailSettings.from_config(section)
    assert settings is not None
    assert (settings.host, settings.port, settings.security) == ("smtp.acme.example", 465, "ssl")
    assert settings.sender == "PMO <pmo@acme.example>" and settings.to == ("vp@acme.example",)
    assert settings.subject == "Report {date}"
    assert EmailSettings.from_config(EmailSection()) is None


def _closed_port() -> int:
    """A loopback port nobody listens on (bound, then closed)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
