"""What one answer, one request and one pull may cost at most, enforced under the HTTP policy.

A tracker (or a proxy in front of it) that misbehaves must fail its connection with a reason,
never hang the run, hold `serve`'s connection lock or fill the worker's memory:

- **Deadlines.** `timeout_seconds` only bounds the gap between two reads, so a body sent one
  byte at a time never times out. Each request gets one deadline from connect to last byte
  (`request_deadline_seconds`, capped by the time left to the pull); a `Watchdog` thread shuts
  the request's socket down when it passes, which ends a blocked read at once, however slowly
  the server sends. Socket timeouts are also capped by the time left, so a connect or a silent
  server never outlasts the deadline either.
- **Size.** Bodies are read here, in large chunks, and refused past `max_response_mb`: at once
  when `Content-Length` says so, else as soon as the bytes read pass it (a chunked or unsized
  body), so the memory one answer takes stays bounded.
- **Redirects.** A redirect to another host is refused: the other host's answer would be taken
  as the tracker's. `requests` already drops credentials on such a redirect; same-host redirects
  (and http → https on the same host) are still followed.

A pull's deadline (`PullDeadline`) starts with the first pull or key scan of a run and covers
both: the pipeline runs `scan_keys()` right after `pull()` on the same connector.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from connectors.base import ConnectorError
from connectors.settings import TransferLimits

CHUNK_BYTES = 256 * 1024
"""Read size: large enough that chunked reading costs nothing on 100k-item pulls (`requests`
reads `content` 10 KiB at a time)."""
_DEFAULT_PORTS = {"http": 80, "https": 443}


class TransferLimitError(ConnectorError):
    """A tracker answer went past a configured limit; the connection fails with the reason."""


class RequestDeadlineExceeded(TransferLimitError):
    """One request took longer than `limits.request_deadline_seconds`, connect to last byte."""


class PullDeadlineExceeded(TransferLimitError):
    """The connection's pull (with its key scan) took longer than `limits.pull_deadline_seconds`."""


class ResponseTooLarge(TransferLimitError):
    """An answer was larger than `limits.max_response_mb`."""


class CrossHostRedirect(TransferLimitError):
    """The tracker redirected to another host; its answer would be taken as the tracker's."""


@dataclass(frozen=True, slots=True)
class TransferBounds:
    """The limits one `PolicyAdapter` enforces on every request (see `TransferLimits`)."""

    request_seconds: float = TransferLimits().request_deadline_seconds
    max_bytes: int = int(TransferLimits().max_response_mb * 2**20)

    @classmethod
    def from_settings(cls, limits: TransferLimits) -> TransferBounds:
        return cls(limits.request_deadline_seconds, int(limits.max_response_mb * 2**20))


class PullDeadline:
    """The deadline of one connection's pull: set on the first `window()` of the run, open
    while any window is (pull and key scan), so requests of a push are not bound by it."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._at: float | None = None
        self._open = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def window(self) -> Iterator[None]:
        with self._lock:
            if self._at is None:
                self._at = self._clock() + self.seconds
            self._open += 1
        try:
            yield
        finally:
            with self._lock:
                self._open -= 1

    def at(self) -> float | None:
        """The monotonic time the pull must end by, or None outside a pull."""
        with self._lock:
            return self._at if self._open else None


@dataclass(eq=False)
class Guard:
    """One request attempt under watch: the connections it uses, shut down at `deadline`."""

    deadline: float
    pull_bound: bool
    """The pull's deadline came first (the error then names the pull, not the request)."""
    fired: bool = False
    closed: bool = False
    _connections: list[Any] = field(default_factory=list)

    def _shut(self, connection: Any) -> None:
        sock = getattr(connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class Watchdog:
    """One daemon thread for every adapter: ends the requests whose deadline has passed.

    Shutting the socket down (not closing it: the reading thread owns the file descriptor)
    makes a blocked `recv` return at once. The lock makes `release` and firing exclusive, so a
    connection handed back to the pool after a complete answer is never shut down later.
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._heap: list[tuple[float, int, Guard]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._released = 0

    def watch(self, deadline: float, *, pull_bound: bool) -> Guard:
        guard = Guard(deadline, pull_bound)
        with self._lock:
            heapq.heappush(self._heap, (deadline, next(self._order), guard))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="http-deadlines", daemon=True
                )
                self._thread.start()
            if self._heap[0][2] is guard:
                # Only an earlier deadline than the one the thread waits for wakes it: most
                # requests share `request_seconds`, so the thread sleeps through them.
                self._lock.notify()
        return guard

    def add_connection(self, guard: Guard, connection: Any) -> None:
        with self._lock:
            if guard.closed:
                return
            guard._connections.append(connection)
            if guard.fired:
                guard._shut(connection)

    def release(self, guard: Guard) -> None:
        with self._lock:
            guard.closed = True
            guard._connections.clear()
            # Finished requests wait in the heap until their deadline comes up; at hundreds of
            # requests a second that is many, so drop them once they are most of it.
            self._released += 1
            if self._released > 1024 and 2 * self._released > len(self._heap):
                self._heap = [entry for entry in self._heap if not entry[2].closed]
                heapq.heapify(self._heap)
                self._released = 0

    def _run(self) -> None:
        with self._lock:
            while True:
                while self._heap and self._heap[0][2].closed:
                    heapq.heappop(self._heap)
                    self._released -= 1
                if not self._heap:
                    self._lock.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._lock.wait(wait)
                    continue
                _, _, guard = heapq.heappop(self._heap)
                guard.fired = True
                for connection in guard._connections:
                    guard._shut(connection)


WATCHDOG = Watchdog()
_current = threading.local()


@contextlib.contextmanager
def guarded(guard: Guard) -> Iterator[Guard]:
    """Connections taken from a pool by this thread inside the block are watched by `guard`."""
    _current.guard = guard
    try:
        yield guard
    finally:
        _current.guard = None
        WATCHDOG.release(guard)


class _WatchedPool:
    """Pool mixin: a connection handed to a guarded request (new or kept alive) is watched
    from before it connects, so the deadline covers connect, headers and body."""

    def _get_conn(self, timeout: float | None = None) -> Any:
        connection = super()._get_conn(timeout)  # type: ignore[misc]
        guard = getattr(_current, "guard", None)
        if guard is not None:
            WATCHDOG.add_connection(guard, connection)
        return connection


class WatchedHTTPPool(_WatchedPool, HTTPConnectionPool):
    pass


class WatchedHTTPSPool(_WatchedPool, HTTPSConnectionPool):
    pass


WATCHED_POOLS = {"http": WatchedHTTPPool, "https": WatchedHTTPSPool}


def watch_answer(guard: Guard, response: requests.Response) -> None:
    """Also watch the connection an answer came on (a proxied request bypasses our pools)."""
    connection = getattr(response.raw, "connection", None)
    if connection is not None:
        WATCHDOG.add_connection(guard, connection)


def capped_timeout(timeout: Any, left: float) -> tuple[float, float]:
    """(connect, read) socket timeouts no longer than the time `left` to the deadline."""
    if isinstance(timeout, tuple):
        connect, read = timeout
    else:
        connect = read = timeout
    left = max(left, 0.001)
    return (
        left if connect is None else min(float(connect), left),
        left if read is None else min(float(read), left),
    )


def read_body(response: requests.Response, max_bytes: int, what: str) -> None:
    """Reads the answer into `response.content`, refusing it past `max_bytes`."""
    declared = response.headers.get("Content-Length", "")
    if declared.strip().isdigit() and int(declared) > max_bytes:
        response.close()
        raise ResponseTooLarge(
            f"{what}: the answer is {_mb(int(declared))}, more than the "
            f"{_mb(max_bytes)} allowed (limits.max_response_mb); not reading it"
        )
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(CHUNK_BYTES):
        size += len(chunk)
        if size > max_bytes:
            response.close()
            raise ResponseTooLarge(
                f"{what}: the answer grew past the {_mb(max_bytes)} allowed "
                "(limits.max_response_mb); stopped reading it"
            )
        chunks.append(chunk)
    response._content = b"".join(chunks)


def check_redirect(response: requests.Response, what: str) -> None:
    """Refuses a redirect to another host (a same-host one is left to `requests` to follow)."""
    if not response.is_redirect:
        return
    source = response.request.url or ""
    target = urljoin(source, response.headers.get("Location", ""))
    if same_host(source, target):
        return
    response.close()
    raise CrossHostRedirect(
        f"{what}: {_origin(source)} redirected to another host ({_origin(target)}); not "
        "following it (its answer is not the tracker's): set `url` to the address the tracker "
        "answers on"
    )


def same_host(source: str, target: str) -> bool:
    """Same host name and port; also http → https on the same host name (default ports)."""
    before, after = urlsplit(source), urlsplit(target)
    if (before.hostname or "").lower() != (after.hostname or "").lower():
        return False
    from_port = before.port or _DEFAULT_PORTS.get(before.scheme)
    to_port = after.port or _DEFAULT_PORTS.get(after.scheme)
    if before.scheme == after.scheme:
        return from_port == to_port
    return (before.scheme, from_port, after.scheme, to_port) == ("http", 80, "https", 443)


def _origin(url: str) -> str:
    """scheme://host:port only: a Location's path or query may carry anything."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _mb(size: int) -> str:
    return f"{size / 2**20:,.1f} MB"
