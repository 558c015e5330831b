"""The SMTP login never crosses the network in clear unless the config says so, and the
addresses of the email settings are single, one-line addresses: at config load, in `check`,
and again at delivery (against a real SMTP server on 127.0.0.1)."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from reports.settings import EmailSettings, mail_address_problem
from spm_sync.cli.demo import LoopbackSmtp
from spm_sync.config.model import load_config
from tests.test_cli import invoke
from tests.test_config import minimal, problems_of, write_config
from tests.test_report_email import Mailbox, _publish, _settings

LOGIN = {"user_env": "SMTP_USER_T", "password_env": "SMTP_PASSWORD_T"}
EMAIL = {
    "enabled": True,
    "host": "smtp.example.com",
    "from": "Portfolio Office <pmo@example.com>",
    "to": ["vp@example.com", "pmo@example.com"],
}
PLAINTEXT = (
    "report.email: security: none would send the SMTP login (user_env/password_env) "
    "unencrypted; use security: starttls or ssl, or set allow_plaintext_auth: true for a relay "
    "on the same host"
)


def _with_email(**email: Any) -> dict[str, Any]:
    return minimal() | {"report": {"email": {**EMAIL, **email}}}


# --- config load ------------------------------------------------------------------------------


@pytest.mark.parametrize("enabled", [True, False])
def test_a_login_over_security_none_is_refused_at_load(tmp_path: Path, enabled: bool) -> None:
    data = _with_email(security="none", enabled=enabled, **LOGIN)
    assert problems_of(tmp_path, data) == [PLAINTEXT]


def test_allow_plaintext_auth_accepts_it_and_reaches_the_sender(tmp_path: Path) -> None:
    data = _with_email(security="none", allow_plaintext_auth=True, **LOGIN)
    config = load_config(write_config(tmp_path, data))
    assert config.report.email.allow_plaintext_auth is True
    settings = EmailSettings.from_config(config.report.email)
    assert settings is not None and settings.allow_plaintext_auth is True


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_encrypted_logins_and_none_without_login_load(tmp_path: Path, security: str) -> None:
    load_config(write_config(tmp_path, _with_email(security=security, **LOGIN)))
    load_config(write_config(tmp_path, _with_email(security="none")))


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        (
            "to",
            ["vp@example.com", "pmo@example.com\r\nBcc: thief@evil.example"],
            "report.email.to[1]: 'pmo@example.com\\r\\nBcc: thief@evil.example' contains "
            "control characters (U+000A, U+000D); expected one address on one line",
        ),
        (
            "to",
            ["vp@example.com", "a@example.com, b@example.com"],
            "report.email.to[1]: 'a@example.com, b@example.com' is 2 addresses, expected one "
            "(give each its own entry)",
        ),
        (
            "to",
            ["a@example.com b@example.com"],
            "report.email.to[0]: 'a@example.com b@example.com' is not an email address",
        ),
        (
            "from",
            "PMO <pmo@example.com>\nReply-To: x@evil.example",
            "report.email.from: 'PMO <pmo@example.com>\\nReply-To: x@evil.example' contains "
            "control characters (U+000A); expected one address on one line",
        ),
        (
            "from",
            "Pay\u202eroll <pmo@example.com>",
            "report.email.from: 'Pay\\u202eroll <pmo@example.com>' contains control characters "
            "(U+202E); expected one address on one line",
        ),
        ("from", "pmo@", "report.email.from: 'pmo@' is not an email address"),
        ("to", ["team: a@example.com;"], "report.email.to[0]: 'team: a@example.com;' is not an "
         "email address"),
    ],
)  # fmt: skip
def test_addresses_are_one_address_on_one_line(
    tmp_path: Path, key: str, value: object, expected: str
) -> None:
    assert problems_of(tmp_path, _with_email(**{key: value})) == [expected]


@pytest.mark.parametrize(
    "address",
    [
        "pmo@example.com",
        "Portfolio Office <pmo@example.com>",
        '"Office, Portfolio" <pmo@example.com>',
        "J. Doe <j.doe@example.com>",
        "Zoë Ärger <zoe@example.com>",
        "מחלקת תיק <pmo@example.com>",
    ],
)
def test_ordinary_addresses_pass(address: str) -> None:
    assert mail_address_problem(address) is None


def test_settings_built_in_code_check_addresses_too() -> None:
    with pytest.raises(ValueError, match=r"report\.email\.to\[1\]: .* control characters"):
        _settings(25, to=("vp@example.com", "pmo@example.com\r\n"))
    with pytest.raises(ValueError, match=r"report\.email\.cc\[0\]: .* is 2 addresses"):
        _settings(25, cc=("a@example.com, b@example.com",))


def test_check_names_the_plaintext_login_and_exits_2(tmp_path: Path) -> None:
    path = write_config(tmp_path, _with_email(security="none", **LOGIN))
    result = invoke("check", "-c", str(path))
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [
        f"✗ {path}: {PLAINTEXT} (fix: edit {path}; every key is documented in "
        "spm-sync.example.yaml)"
    ]


# --- delivery ---------------------------------------------------------------------------------


class RecordingSmtp(smtplib.SMTP):
    """smtplib's client, keeping every line it writes to the socket: what crossed the wire."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.wire: list[bytes] = []
        super().__init__(*args, **kwargs)

    def send(self, s: bytes | str) -> None:
        self.wire.append(s if isinstance(s, bytes) else s.encode("ascii"))
        super().send(s)


@pytest.fixture
def login_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Mailbox, int, list[bytes]]]:
    """A server that offers AUTH in clear (as a careless relay would) and records logins."""
    logins: list[bytes] = []

    def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:  # type: ignore[no-untyped-def]
        assert isinstance(auth_data, LoginPassword)
        logins.append(auth_data.password)
        return AuthResult(success=True)

    box = Mailbox()
    controller = LoopbackSmtp(
        box, hostname="127.0.0.1", port=0, authenticator=authenticator, auth_require_tls=False
    )
    controller.start()
    monkeypatch.setenv("SMTP_USER_T", "reporter")
    monkeypatch.setenv("SMTP_PASSWORD_T", "s3cret-pw")
    try:
        yield box, controller.port, logins
    finally:
        controller.stop()


def _recording_factory(clients: list[RecordingSmtp]):  # type: ignore[no-untyped-def]
    def connect(settings: EmailSettings, context: ssl.SSLContext) -> smtplib.SMTP:
        client = RecordingSmtp(settings.host, settings.port, timeout=5)
        clients.append(client)
        return client

    return connect


def _auth_lines(clients: list[RecordingSmtp]) -> list[bytes]:
    return [line for client in clients for line in client.wire if line.upper().startswith(b"AUTH")]


def test_no_login_in_clear_without_the_flag(
    login_server: tuple[Mailbox, int, list[bytes]], tmp_path: Path
) -> None:
    box, port, logins = login_server
    clients: list[RecordingSmtp] = []
    settings = _settings(port, security="none", **LOGIN)
    published, sleeps = _publish(tmp_path, settings, smtp_factory=_recording_factory(clients))
    assert published.delivery.status == "failed" and sleeps == []
    assert "unencrypted connection" in (published.delivery.reason or "")
    assert clients == [] and logins == [] and box.data_attempts == 0
    assert published.paths.html.exists()


def test_plain_connection_behind_an_encrypted_setting_gets_no_login(
    login_server: tuple[Mailbox, int, list[bytes]], tmp_path: Path
) -> None:
    """Defence in depth: the socket is checked, not the setting."""
    box, port, logins = login_server
    clients: list[RecordingSmtp] = []
    settings = _settings(port, security="ssl", **LOGIN)
    published, sleeps = _publish(tmp_path, settings, smtp_factory=_recording_factory(clients))
    assert published.delivery.status == "failed" and sleeps == []
    assert "refusing to send the SMTP login" in (published.delivery.reason or "")
    assert len(clients) == 1 and clients[0].wire  # it did talk to the server: EHLO
    assert _auth_lines(clients) == [] and logins == [] and box.data_attempts == 0


def test_starttls_not_offered_fails_instead_of_logging_in_in_clear(
    login_server: tuple[Mailbox, int, list[bytes]], tmp_path: Path
) -> None:
    box, port, logins = login_server
    clients: list[RecordingSmtp] = []
    settings = _settings(port, security="starttls", **LOGIN)
    published, sleeps = _publish(tmp_path, settings, smtp_factory=_recording_factory(clients))
    assert published.delivery.status == "failed" and sleeps == []
    assert "STARTTLS" in (published.delivery.reason or "")
    assert _auth_lines(clients) == [] and logins == [] and box.data_attempts == 0


def test_the_flag_lets_a_local_relay_take_the_login(
    login_server: tuple[Mailbox, int, list[bytes]], tmp_path: Path
) -> None:
    box, port, logins = login_server
    clients: list[RecordingSmtp] = []
    settings = _settings(port, security="none", allow_plaintext_auth=True, **LOGIN)
    published, _ = _publish(tmp_path, settings, smtp_factory=_recording_factory(clients))
    assert published.delivery.status == "sent", published.delivery.reason
    assert len(_auth_lines(clients)) == 1 and logins == [b"s3cret-pw"]
    assert len(box.received) == 1
