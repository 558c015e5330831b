"""What both sandbox trackers share: the HTTP machinery of `connectors/sandbox/server.py` (Basic
credentials, the answer to a sandbox bug, a stop that ends open keep-alive connections) and
the seeds they accept."""

from __future__ import annotations

import base64
import http.client
import re
from datetime import datetime
from email.message import Message

import pytest
import requests

from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.jira_server import JiraSandbox
from connectors.sandbox.server import SandboxRequest, SandboxResponse
from tests.jira_sandbox_seeds import seed as jira_seed
from tests.sandbox_ado_support import seed_item as ado_seed
from tests.sandbox_ado_support import small_portfolio as ado_portfolio

pytestmark = pytest.mark.integration


def _request(authorization: str | None) -> SandboxRequest:
    headers = Message()
    if authorization is not None:
        headers["Authorization"] = authorization
    return SandboxRequest("GET", "/", {}, headers, b"")


def _basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        (
            _basic("someone@example.com:s3cret:with:colons"),
            ("someone@example.com", "s3cret:with:colons"),
        ),
        (_basic(":the-pat"), ("", "the-pat")),
        ("basic " + base64.b64encode(b"user:pw").decode() + " ", ("user", "pw")),
        (_basic("no-colon"), ("no-colon", "")),
        (None, None),
        ("Bearer the-token", None),
        ("Basic not*base64", None),
        ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), None),
    ],
)
def test_basic_credentials_decode_or_answer_none(
    authorization: str | None, expected: tuple[str, str] | None
) -> None:
    assert _request(authorization).basic_credentials() == expected


def _boom(request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
    raise RuntimeError("a bug in the sandbox")


def test_a_sandbox_bug_answers_500_in_each_trackers_error_shape(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with JiraSandbox() as jira:
        jira.add_route("GET", "/rest/api/2/boom", _boom, "GET boom")
        answer = requests.get(f"{jira.url}/rest/api/2/boom", auth=jira.basic_auth, timeout=10)
        assert (answer.status_code, answer.json()) == (
            500,
            {"errorMessages": ["Internal server error"]},
        )
        assert jira.counts["GET boom"] == 1
    with AzureDevOpsSandbox(ado_portfolio()) as ado:
        ado.add_route("GET", "/sandbox/_apis/boom", _boom, "GET boom")
        answer = requests.get(f"{ado.organization_url}/_apis/boom", auth=ado.basic_auth, timeout=10)
        body = answer.json()
        assert answer.status_code == 500
        assert body["typeKey"] == "InternalServerErrorException"
        assert (
            body["message"] == "Internal error in the sandbox: RuntimeError('a bug in the sandbox')"
        )
        assert ado.counts["GET boom"] == 1
    assert capsys.readouterr().err.count("RuntimeError: a bug in the sandbox") == 2


def test_stop_ends_open_keep_alive_connections() -> None:
    """Without it, the thread serving a kept-alive connection waits for the client's next
    request for as long as the client lives, well after the sandbox stopped."""
    sandbox = JiraSandbox()
    sandbox.start()
    host, port = sandbox.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.request("GET", "/rest/api/2/serverInfo")
        answer = connection.getresponse()
        answer.read()
        assert answer.status == 401 and not answer.will_close
        sandbox.stop()
        assert connection.sock is not None
        connection.sock.settimeout(5)
        assert connection.sock.recv(1) == b""  # the end of the stream, not a timeout
    finally:
        connection.close()
        sandbox.stop()


def test_both_sandboxes_refuse_seed_times_without_a_time_zone() -> None:
    naive = datetime(2026, 1, 5, 12, 0)
    jira_item, ado_item = jira_seed("PAY-1", 10001), ado_seed(101)
    jira_item.updated = ado_item.created = naive
    with pytest.raises(ValueError, match="has no time zone"):
        JiraSandbox([jira_item])
    with pytest.raises(ValueError, match="has no time zone"):
        AzureDevOpsSandbox([ado_item])
