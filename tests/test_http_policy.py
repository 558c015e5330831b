"""The shared HTTP policy (connectors/http.py) over real requests code paths (responses)."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
import responses

from connectors.http import (
    RetryBudgetExceeded,
    RetryPolicy,
    endpoint_name,
    mount_policy,
    parse_retry_after,
)
from spm_sync.core.requests import RequestStats

URL = "https://tracker.test"


class FakeTime:
    """Records sleeps and advances a fake monotonic clock by them."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@pytest.fixture
def rsps() -> Iterable[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


def session(
    fake: FakeTime, policy: RetryPolicy | None = None
) -> tuple[requests.Session, RequestStats]:
    stats = RequestStats()
    http = requests.Session()
    mount_policy(
        http,
        stats,
        policy or RetryPolicy(max_attempts=4, max_wait=60),
        sleep=fake.sleep,
        clock=fake.clock,
    )
    return http, stats


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("7", 7.0), (" 2.5 ", 2.5), ("0", 0.0), ("-3", 0.0), ("", None), (None, None), ("soon", None)],
)
def test_parse_retry_after_seconds(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value) == seconds


def test_parse_retry_after_http_date() -> None:
    now = datetime(2024, 5, 2, 12, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    earlier = format_datetime(now - timedelta(seconds=90), usegmt=True)
    assert later == "Thu, 02 May 2024 12:01:30 GMT"
    assert parse_retry_after(later, now=now.timestamp()) == 90.0
    assert parse_retry_after(earlier, now=now.timestamp()) == 0.0


def test_parse_retry_after_reads_a_zoneless_date_as_gmt(monkeypatch: pytest.MonkeyPatch) -> None:
    """A "-0000" (or missing) zone parses naive; it must not be read in local time."""
    now = datetime(2024, 5, 2, 12, 0, tzinfo=UTC)
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert parse_retry_after("Thu, 02 May 2024 12:01:30 -0000", now=now.timestamp()) == 90.0
        assert parse_retry_after("Thu, 02 May 2024 12:01:30", now=now.timestamp()) == 90.0
    finally:
        monkeypatch.undo()
        time.tzset()


def test_429_waits_the_retry_after_seconds(rsps: responses.RequestsMock) -> None:
    fake = FakeTime()
    http, stats = session(fake)
    rsps.get(f"{URL}/items", status=429, headers={"Retry-After": "5", "X-RateLimit-Limit": "100"})
    rsps.get(f"{URL}/items", json={"ok": True}, headers={"X-RateLimit-Remaining": "42"})

    response = http.get(f"{URL}/items")

    assert response.status_code == 200
    assert len(fake.sleeps) == 1 and 5.0 <= fake.sleeps[0] <= 5.5
    assert (stats.retries, stats.throttled, stats.requests) == (1, 1, 2)
    assert stats.rate_limit == {
        "Retry-After": "5",
        "X-RateLimit-Limit": "100",
        "X-RateLimit-Remaining": "42",
    }


def test_429_waits_until_an_http_date(rsps: responses.RequestsMock) -> None:
    fake = FakeTime()
    http, _ = session(fake)
    when = format_datetime(datetime.fromtimestamp(time.time() + 30, UTC), usegmt=True)
    rsps.get(f"{URL}/items", status=429, headers={"Retry-After": when})
    rsps.get(f"{URL}/items", json={})

    http.get(f"{URL}/items")

    assert len(fake.sleeps) == 1 and 27.0 <= fake.sleeps[0] <= 33.0


def test_beta_retry_after_is_honoured(rsps: responses.RequestsMock) -> None:
    fake = FakeTime()
    http, stats = session(fake)
    rsps.get(f"{URL}/items", status=429, headers={"Beta-Retry-After": "4"})
    rsps.get(f"{URL}/items", json={})

    http.get(f"{URL}/items")

    assert len(fake.sleeps) == 1 and 4.0 <= fake.sleeps[0] <= 4.4
    assert stats.rate_limit["Beta-Retry-After"] == "4"


def test_503_without_retry_after_backs_off_exponentially_then_gives_up(
    rsps: responses.RequestsMock,
) -> None:
    fake = FakeTime()
    http, stats = session(fake, RetryPolicy(max_attempts=4, base_delay=1.0, max_wait=60))
    rsps.get(f"{URL}/items", status=503)

    response = http.get(f"{URL}/items")

    assert response.status_code == 503  # the last answer goes back to the caller
    assert stats.requests == 4
    assert len(fake.sleeps) == 3
    for attempt, slept in enumerate(fake.sleeps):
        assert 2**attempt * 0.5 <= slept <= 2**attempt


def test_only_retries_that_happen_are_counted(rsps: responses.RequestsMock) -> None:
    fake = FakeTime()
    http, stats = session(fake, RetryPolicy(max_attempts=3, base_delay=1.0, max_wait=60))
    rsps.get(f"{URL}/items", status=429)

    http.get(f"{URL}/items")

    assert len(fake.sleeps) == 2
    assert (stats.requests, stats.retries, stats.throttled) == (3, 2, 2)
    assert stats.waited_seconds == pytest.approx(sum(fake.sleeps))


def test_a_retried_answer_gives_its_connection_back() -> None:
    """The 503 a retry replaces is never read by the caller; closed, its kept-alive connection
    serves the retry instead of being held until garbage collection."""
    peers: list[int] = []
    answers = iter([503, 200])

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            peers.append(self.client_address[1])
            body = b"{}"
            self.send_response(next(answers))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        fake = FakeTime()
        session_, stats = session(fake)
        with session_:
            response = session_.get(f"http://127.0.0.1:{server.server_port}/items", timeout=5)
        assert response.status_code == 200 and stats.retries == 1
        assert len(peers) == 2 and peers[0] == peers[1]  # one connection for both requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_backoff_is_capped_at_max_wait(rsps: responses.RequestsMock) -> None:
    fake = FakeTime()
    http, _ = session(fake, RetryPolicy(max_attempts=6, base_delay=1.0, max_wait=3.0))
    rsps.get(f"{URL}/items", status=503)

    http.get(f"{URL}/items")

    assert max(fake.sleeps) <= 3.0


def test_retry_after_beyond_the_budget_raises_without_waiting(
    rsps: responses.RequestsMock,
) -> None:
    fake = FakeTime()
    http, stats = session(fake, RetryPolicy(max_attempts=4, max_wait=30))
    rsps.get(f"{URL}/items", status=429, headers={"Retry-After": "3600"})

    with pytest.raises(RetryBudgetExceeded, match="Retry-After 3600s, more than the 30s") as raised:
        http.get(f"{URL}/items")

    assert raised.value.response is not None and raised.value.response.status_code == 429
    assert fake.sleeps == [] and stats.requests == 1


def test_a_success_asking_to_slow_down_paces_the_next_request(
    rsps: responses.RequestsMock,
) -> None:
    fake = FakeTime()
    http, stats = session(fake)
    rsps.get(f"{URL}/a", json={}, headers={"Retry-After": "2"})
    rsps.get(f"{URL}/b", json={}, headers={"X-RateLimit-Delay": "0.5"})
    rsps.get(f"{URL}/c", json={})

    http.get(f"{URL}/a")
    assert fake.sleeps == []  # a 2xx is never retried, only the next call waits
    http.get(f"{URL}/b")
    http.get(f"{URL}/c")

    assert fake.sleeps == [2.0, 0.5]
    assert stats.throttled == 2 and stats.retries == 0
    assert stats.waited_seconds == pytest.approx(2.5)


def test_connection_resets_are_retried(rsps: responses.RequestsMock) -> None:
    fake = FakeTime()
    http, stats = session(fake)
    rsps.get(f"{URL}/items", body=requests.ConnectionError("Connection reset by peer"))
    rsps.get(f"{URL}/items", json={"ok": True})

    assert http.get(f"{URL}/items").json() == {"ok": True}
    assert (stats.requests, stats.retries, stats.throttled) == (2, 1, 0)


def test_resets_beyond_the_attempts_raise(rsps: responses.RequestsMock) -> None:
    fake = FakeTime()
    http, stats = session(fake, RetryPolicy(max_attempts=2))
    rsps.get(f"{URL}/items", body=requests.ConnectionError("Connection reset by peer"))

    with pytest.raises(requests.ConnectionError):
        http.get(f"{URL}/items")
    assert stats.requests == 2


def test_requests_are_counted_per_endpoint_with_ids_folded(rsps: responses.RequestsMock) -> None:
    fake = FakeTime()
    http, stats = session(fake)
    rsps.get(f"{URL}/rest/agile/1.0/board/17/issue", json={})
    rsps.put(f"{URL}/rest/agile/1.0/issue/PAY-12", json={})
    rsps.put(f"{URL}/rest/agile/1.0/issue/WEB-3", json={})
    rsps.patch(f"{URL}/org/Portfolio/_apis/wit/workitems/4711", json={})

    http.get(f"{URL}/rest/agile/1.0/board/17/issue")
    http.put(f"{URL}/rest/agile/1.0/issue/PAY-12")
    http.put(f"{URL}/rest/agile/1.0/issue/WEB-3")
    http.patch(f"{URL}/org/Portfolio/_apis/wit/workitems/4711")

    assert stats.by_endpoint == {
        "GET /rest/agile/1.0/board/{id}/issue": 1,
        "PUT /rest/agile/1.0/issue/{id}": 2,
        "PATCH /org/Portfolio/_apis/wit/workitems/{id}": 1,
    }
    assert stats.as_dict()["requests"] == 4


def test_endpoint_name_folds_keys_and_numeric_ids() -> None:
    request = requests.Request("GET", f"{URL}/rest/api/3/issue/PAY-12/changelog?x=1").prepare()
    assert endpoint_name(request).endswith("/issue/{id}/changelog")
