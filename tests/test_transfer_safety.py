"""A tracker that stalls, redirects elsewhere or sends a huge answer fails its connection with
the reason, within the configured limits, against real HTTP servers on 127.0.0.1.

The sandboxes' hostile `Faults` play the servers of issue 12: a body trickling one byte at a
time (`trickle_seconds`), a redirect to another host (`redirect_to`), an answer padded with
hundreds of MB of JSON whitespace (`padding_mb`, sized or chunked).
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from connectors.base import ConnectorError
from connectors.http import mount_policy
from connectors.registry import default_connector_factory
from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.jira_server import JiraSandbox
from connectors.sandbox.server import Faults
from connectors.transfer import (
    CrossHostRedirect,
    PullDeadline,
    PullDeadlineExceeded,
    RequestDeadlineExceeded,
    ResponseTooLarge,
    TransferBounds,
    same_host,
)
from spm_sync.config.model import WriteMode
from spm_sync.core.requests import RequestStats
from spm_sync.pipeline.cycle import CycleDeps, run_cycle
from spm_sync.store import Store
from tests.cycle_fixtures import sandbox_setup
from tests.hostile_trackers import (
    ado_connector,
    ado_items,
    jira_connector,
    jira_items,
    scripted_server,
    settled,
    timed,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

SLACK = 1.5
"""How far past a deadline a run may end (the watchdog fires on time; the rest is teardown)."""
RECENTLY = datetime.now(UTC) - timedelta(days=3650)


@pytest.fixture(params=["cloud", "datacenter"])
def jira(request: pytest.FixtureRequest) -> Iterator[JiraSandbox]:
    with JiraSandbox(jira_items(), flavour=request.param) as sandbox:
        yield sandbox


@pytest.fixture
def ado() -> Iterator[AzureDevOpsSandbox]:
    with AzureDevOpsSandbox(ado_items()) as sandbox:
        yield sandbox


# -- deadlines -------------------------------------------------------------------------------
def test_a_trickling_jira_answer_ends_at_the_request_deadline(jira: JiraSandbox) -> None:
    """One byte every 0.2 s never trips the 30 s read timeout; the 1.5 s deadline ends it."""
    connector = jira_connector(jira, timeout_seconds=30, limits={"request_deadline_seconds": 1.5})
    jira.set_faults(Faults(trickle_seconds=0.2, only_paths=("/search",)))

    error, seconds = timed(lambda: list(connector.pull(None)))

    assert isinstance(error, RequestDeadlineExceeded), error
    assert "limits.request_deadline_seconds" in str(error)
    assert 1.5 <= seconds < 1.5 + SLACK


def test_a_trickling_azure_devops_answer_ends_at_the_request_deadline(
    ado: AzureDevOpsSandbox,
) -> None:
    connector = ado_connector(ado, timeout_seconds=30, limits={"request_deadline_seconds": 1.5})
    ado.set_faults(Faults(trickle_seconds=0.2, only_paths=("/wiql",)))

    error, seconds = timed(lambda: list(connector.pull(None)))

    assert isinstance(error, RequestDeadlineExceeded), error
    assert 1.5 <= seconds < 1.5 + SLACK


def test_the_pull_deadline_caps_every_request_of_the_pull(jira: JiraSandbox) -> None:
    connector = jira_connector(
        jira, limits={"request_deadline_seconds": 60, "pull_deadline_seconds": 1.5}
    )
    jira.set_faults(Faults(trickle_seconds=0.2, only_paths=("/search",)))

    error, seconds = timed(lambda: list(connector.pull(RECENTLY)))

    assert isinstance(error, PullDeadlineExceeded), error
    assert "limits.pull_deadline_seconds" in str(error)
    assert seconds < 1.5 + SLACK


def test_the_key_scan_after_a_pull_shares_its_deadline(ado: AzureDevOpsSandbox) -> None:
    """`scan_keys()` follows `pull()` in a run; together they get one pull deadline."""
    connector = ado_connector(ado, limits={"pull_deadline_seconds": 2.0})
    started = time.monotonic()
    assert len(list(connector.pull(None))) == len(ado_items())
    ado.set_faults(Faults(trickle_seconds=0.2, only_paths=("/wiql",)))

    error, _ = timed(connector.scan_keys)

    assert isinstance(error, PullDeadlineExceeded), error
    assert time.monotonic() - started < 2.0 + SLACK


def test_a_push_after_the_pull_is_not_bound_by_the_pull_deadline(jira: JiraSandbox) -> None:
    # Long enough for the pull itself on a busy machine; the request below comes after it.
    connector = jira_connector(jira, limits={"pull_deadline_seconds": 2.0})
    list(connector.pull(None))
    time.sleep(2.1)
    before = jira.request_count
    assert connector.client.server_info()["deploymentType"]  # any request outside a pull
    assert jira.request_count == before + 1


# -- redirects -------------------------------------------------------------------------------
def test_a_redirect_to_another_host_is_refused(jira: JiraSandbox) -> None:
    """localhost is another host than 127.0.0.1: its answer must not be taken as Jira's."""
    with JiraSandbox(jira_items(), flavour=jira.flavour) as other:
        port = other.url.rsplit(":", 1)[1]
        jira.set_faults(Faults(redirect_to=f"http://localhost:{port}"))

        error, _ = timed(lambda: list(jira_connector(jira).pull(None)))

        assert isinstance(error, CrossHostRedirect), error
        assert f"redirected to another host (http://localhost:{port})" in str(error)
        assert other.request_count == 0


def test_an_azure_devops_redirect_to_another_host_is_refused(ado: AzureDevOpsSandbox) -> None:
    with AzureDevOpsSandbox(ado_items()) as other:
        port = other.url.rsplit(":", 1)[1]
        ado.set_faults(Faults(redirect_to=f"http://localhost:{port}", only_paths=("/wiql",)))

        error, _ = timed(lambda: list(ado_connector(ado).pull(None)))

        assert isinstance(error, CrossHostRedirect), error
        assert other.request_count == 0


class _Redirecting(http.server.BaseHTTPRequestHandler):
    """/same → /target on this server; /away → the same server named `localhost`."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        port = self.server.server_address[1]
        if self.path == "/target":
            body = json.dumps({"auth": self.headers.get("Authorization")}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        target = "/target" if self.path == "/same" else f"http://localhost:{port}/target"
        self.send_response(302)
        self.send_header("Location", target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def redirecting() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_same_host_redirect_is_followed_and_counted(redirecting: str) -> None:
    stats = RequestStats()
    session = requests.Session()
    mount_policy(session, stats)
    session.auth = ("user", "secret")

    answer = session.get(f"{redirecting}/same", timeout=5)

    assert answer.json()["auth"] is not None  # same host: the credentials go along
    assert stats.requests == 2

    with pytest.raises(CrossHostRedirect):
        session.get(f"{redirecting}/away", timeout=5)
    assert stats.requests == 3  # the redirect was answered, never followed


@pytest.mark.parametrize(
    ("source", "target", "same"),
    [
        ("http://127.0.0.1:8080/a", "http://127.0.0.1:8080/b", True),
        ("http://127.0.0.1:8080/a", "http://localhost:8080/b", False),
        ("http://127.0.0.1:8080/a", "http://127.0.0.1:8081/b", False),
        ("http://jira.example.com/a", "https://jira.example.com/a", True),
        ("https://jira.example.com/a", "http://jira.example.com/a", False),
        ("https://JIRA.example.com/a", "https://jira.example.com:443/b", True),
    ],
)
def test_same_host(source: str, target: str, same: bool) -> None:
    assert same_host(source, target) is same


# -- size ------------------------------------------------------------------------------------
@pytest.mark.parametrize("unsized", [False, True], ids=["content-length", "chunked"])
def test_a_huge_jira_page_is_refused_without_reading_it(jira: JiraSandbox, unsized: bool) -> None:
    connector = jira_connector(jira, limits={"max_response_mb": 1})
    jira.set_faults(Faults(padding_mb=256, padding_unsized=unsized, only_paths=("/search",)))

    error, _ = timed(lambda: list(connector.pull(None)))

    assert isinstance(error, ResponseTooLarge), error
    assert "limits.max_response_mb" in str(error)
    # The client stopped long before the 256 MB: what the server got rid of is the client's
    # first MB plus what the sockets' buffers took.
    assert settled(lambda: jira.padding_sent) < 32 * 2**20


def test_a_huge_azure_devops_batch_is_refused_while_it_streams(ado: AzureDevOpsSandbox) -> None:
    connector = ado_connector(ado, limits={"max_response_mb": 2})
    ado.set_faults(Faults(padding_mb=256, padding_unsized=True, only_paths=("/workItemsBatch",)))

    error, _ = timed(lambda: list(connector.pull(None)))

    assert isinstance(error, ResponseTooLarge), error
    assert settled(lambda: ado.padding_sent) < 32 * 2**20


def test_answers_under_the_limit_are_read_whole(jira: JiraSandbox) -> None:
    """Padding below the limit is harmless JSON whitespace: the pull completes."""
    connector = jira_connector(jira, limits={"max_response_mb": 4})
    jira.set_faults(Faults(padding_mb=2, padding_unsized=True, only_paths=("/search",)))
    assert len(list(connector.pull(None))) == len(jira_items())


def test_transfer_errors_are_connector_errors() -> None:
    """The pipeline records a `ConnectorError` as that connection's error and goes on."""
    for error in (
        RequestDeadlineExceeded,
        PullDeadlineExceeded,
        ResponseTooLarge,
        CrossHostRedirect,
    ):
        assert issubclass(error, ConnectorError)


def test_pull_deadline_is_open_only_inside_a_window() -> None:
    clock = iter([100.0]).__next__
    deadline = PullDeadline(10.0, clock=clock)
    assert deadline.at() is None
    with deadline.window():
        assert deadline.at() == 110.0
    assert deadline.at() is None
    assert TransferBounds().max_bytes == 64 * 2**20


# -- in a cycle ------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_cycle_reports_the_hostile_connection_failed_and_goes_on_with_the_other(
    tmp_path: Path,
) -> None:
    """What the pipeline makes of it: the connection's problem is the limit's message, and the
    other tracker is pulled as usual."""
    with sandbox_setup(tmp_path, size=300) as env:
        config = env.config()
        env.jira.set_faults(Faults(endless_pages=True))
        with Store.from_settings(config.store) as store:
            deps = CycleDeps(
                store, connector_factory=default_connector_factory(discovery_cache_dir=None)
            )
            outcome = run_cycle(config, deps, mode=WriteMode.PLAN, send_email=False)
    assert outcome.result is not None
    problems = {c.name: c.problem for c in outcome.result.connections}
    assert "only issues it had already returned" in (problems["jira"] or "")
    assert not problems["azure-devops"]


def test_the_watchdog_forgets_finished_requests() -> None:
    from connectors.transfer import Watchdog

    watchdog = Watchdog()
    far = time.monotonic() + 3600
    for _ in range(5000):
        guard = watchdog.watch(far, pull_bound=False)
        watchdog.release(guard)
    assert len(watchdog._heap) <= 2100
    soon = watchdog.watch(time.monotonic() + 0.05, pull_bound=False)
    time.sleep(0.3)
    assert soon.fired


def _session(request_seconds: float) -> requests.Session:
    session = requests.Session()
    mount_policy(session, RequestStats(), bounds=TransferBounds(request_seconds, 2**20))
    return session


@pytest.mark.parametrize(
    "script",
    [
        [],  # accepts, never answers
        [(0.0, b"H"), *[(0.2, b"T")] * 100],  # the status line, a byte at a time
        [(0.0, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"), *[(0.2, b" ")] * 100],
    ],
    ids=["silent", "trickling-headers", "trickling-body"],
)
def test_the_request_deadline_holds_from_connect_to_last_byte(
    script: list[tuple[float, bytes]],
) -> None:
    """With a 30 s read timeout, each of these servers would hold a request 20 s or forever."""
    with scripted_server(script) as url:
        error, seconds = timed(lambda: _session(1.0).get(f"{url}/x", timeout=30))
    assert isinstance(error, RequestDeadlineExceeded), error
    assert 1.0 <= seconds < 1.0 + SLACK
