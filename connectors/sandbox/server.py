"""The HTTP machinery shared by the sandbox trackers: threads, routing, auth, counting, faults.

A sandbox is a real HTTP/1.1 server on 127.0.0.1 (keep-alive, one thread per connection), so
the connectors and the unmodified `jira` / `azure-devops` client libraries talk to it exactly
as they talk to the cloud. Tracker servers subclass `SandboxServer`, register routes and
answer with JSON; faults (latency, 429/503 with Retry-After, connection resets, slow bodies)
are injected here so every route gets them the same way.

Hostile modes, for tests and soak runs of the transfer limits (all off by default, so the
normal answers stay those of the specs): `endless_pages` (each tracker's search routes page
without end, see `Faults`), `empty_answers` (searches find nothing), `trickle_seconds` (a
body that leaves one byte at a time), `redirect_to` (a 307 to another base URL) and
`padding_mb` (an answer padded with JSON whitespace, streamed without building it, with or
without a Content-Length).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import random
import re
import socket
import struct
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from connectors.sandbox.raw_json import encode_answer


def path_selected(only_paths: tuple[str, ...], path: str) -> bool:
    """Whether a fault limited to `only_paths` (any path when empty) hits `path`."""
    return not only_paths or any(part in path for part in only_paths)


@dataclass(frozen=True)
class Faults:
    """What goes wrong, and how often. Shares are probabilities per request (0..1).

    `only_paths`: when set, faults hit only requests whose path contains one of these strings,
    so a test can throttle, say, the search endpoint alone.
    """

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    throttle_rate: float = 0.0
    unavailable_rate: float = 0.0
    reset_rate: float = 0.0
    slow_body_rate: float = 0.0
    slow_body_seconds: float = 0.5
    retry_after_seconds: int = 1
    seed: int = 0
    only_paths: tuple[str, ...] = ()
    endless_pages: bool = False
    """Searches never end: Jira Cloud `search/jql` answers the same issues with a fresh
    `nextPageToken` and `isLast: false` on every page, Data Center `search` ignores the keyset
    restriction (`key > "…"`) and claims a `total` beyond the page, WIQL ignores the id window
    (`[System.Id] > n`, `<= n`) and answers ids again to fill `$top`."""
    empty_answers: bool = False
    """Searches answer with nothing, well-formed: no issues (Cloud `isLast: true`, Data Center
    `total: 0`), no WIQL ids; as a scope typo or a token that lost its permissions would."""
    trickle_seconds: float = 0.0
    """When > 0: the body leaves one byte every this many seconds (headers at once)."""
    redirect_to: str | None = None
    """A base URL: answer 307 to the same path and query there instead of serving."""
    padding_mb: float = 0.0
    """JSON whitespace appended to every answer, streamed in 64 KiB pieces."""
    padding_unsized: bool = False
    """Send padded answers chunked, without Content-Length."""

    def applies_to(self, path: str) -> bool:
        return path_selected(self.only_paths, path)


NO_FAULTS = Faults()


@dataclass
class SandboxRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def basic_credentials(self) -> tuple[str, str] | None:
        """(user, secret) of an HTTP Basic `Authorization` header; None when the request has no
        Basic credentials or they do not decode (both trackers take Basic auth)."""
        scheme, _, encoded = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, _, secret = decoded.partition(":")
        return user, secret

    def json(self) -> Any:
        if not self.body:
            raise HttpError(400, {"errorMessages": ["Request body is empty"]})
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise HttpError(400, {"errorMessages": [f"Invalid JSON: {error}"]}) from error


JSON_CONTENT_TYPE = "application/json;charset=UTF-8"


@dataclass
class SandboxResponse:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON_CONTENT_TYPE

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return bytes(self.body)
        return encode_answer(self.body)  # items cached as `RawJson` are spliced in as they are


class HttpError(Exception):
    """Raised by a handler to answer with an error status and a tracker-shaped body."""

    def __init__(
        self,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
        content_type: str = JSON_CONTENT_TYPE,
    ):
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.content_type = content_type

    def response(self) -> SandboxResponse:
        return SandboxResponse(self.status, self.body, self.headers, self.content_type)


Handler = Callable[[SandboxRequest, re.Match[str]], SandboxResponse]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    name: str
    handler: Handler


class SandboxServer:
    """Base class of the tracker sandboxes. Use as a context manager:

        with JiraSandbox(...) as jira:
            client = JIRA(jira.url, basic_auth=jira.basic_auth)

    `counts` counts the requests that reached the routes, per route name ("POST
    /rest/api/3/search/jql"; unmatched ones as "GET (unrouted)"), not those an injected fault
    answered or reset; `faults` can be swapped at any time with `set_faults`.
    """

    def __init__(self, faults: Faults = NO_FAULTS) -> None:
        self.routes: list[Route] = []
        self.counts: Counter[str] = Counter()
        self.faults = faults
        self.lock = threading.RLock()
        self._random = random.Random(faults.seed)
        self._random_lock = threading.Lock()
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self.padding_sent = 0
        """Bytes of `Faults.padding_mb` padding written so far (what a client let through)."""

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        handler = _make_handler(self)
        self._httpd = _HttpServer((host, port), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}-http",
            daemon=True,
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd.close_connections()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("sandbox is not running")
        host, port = self._httpd.server_address[:2]
        # An AF_INET socket names its host as str; the stub's bytes is for addresses passed in.
        if not isinstance(host, str):
            host = host.decode()
        return f"http://{host}:{port}"

    # -- configuration -----------------------------------------------------------------------
    def add_route(self, method: str, pattern: str, handler: Handler, name: str = "") -> None:
        compiled = re.compile(f"^{pattern}$")
        self.routes.append(Route(method.upper(), compiled, name or f"{method} {pattern}", handler))

    def set_faults(self, faults: Faults) -> None:
        with self._random_lock:
            self.faults = faults
            self._random = random.Random(faults.seed)

    def without_faults(self) -> Faults:
        """Switch faults off and return the previous setting (to restore later)."""
        previous = self.faults
        self.set_faults(replace(NO_FAULTS, seed=previous.seed))
        return previous

    def reset_counts(self) -> None:
        with self.lock:
            self.counts.clear()

    @property
    def request_count(self) -> int:
        return sum(self.counts.values())

    # -- hooks for subclasses ----------------------------------------------------------------
    def authenticate(self, request: SandboxRequest) -> None:
        """Raise HttpError(401) when the request's credentials are wrong. Default: open."""

    def not_found(self, request: SandboxRequest) -> SandboxResponse:
        return SandboxResponse(404, {"errorMessages": [f"No route for {request.path}"]})

    def throttled_response(self, status: int) -> SandboxResponse:
        """The body a 429/503 carries; trackers override with their own wording."""
        return SandboxResponse(status, {"message": "Rate limit exceeded"})

    def internal_error(self, request: SandboxRequest, error: Exception) -> SandboxResponse:
        """The 500 a sandbox bug answers with; trackers override with their error shape."""
        return SandboxResponse(500, {"errorMessages": ["Internal server error"]})

    # -- dispatch ----------------------------------------------------------------------------
    def dispatch(self, request: SandboxRequest) -> tuple[SandboxResponse, str]:
        for route in self.routes:
            if route.method != request.method:
                continue
            match = route.pattern.match(request.path)
            if match:
                try:
                    self.authenticate(request)
                    return route.handler(request, match), route.name
                except HttpError as error:
                    return error.response(), route.name
                except Exception as error:
                    # A sandbox bug must look like a server error to the client (as a real
                    # tracker's 500 would), not like a dropped connection.
                    traceback.print_exc()
                    return self.internal_error(request, error), route.name
        return self.not_found(request), f"{request.method} (unrouted)"

    def hostile_paging(self, request: SandboxRequest) -> bool:
        """Whether this search request gets the endless-pages answer (`Faults.endless_pages`)."""
        return self.faults.endless_pages and self.faults.applies_to(request.path)

    def hostile_empty(self, request: SandboxRequest) -> bool:
        """Whether this search request gets an empty answer (`Faults.empty_answers`)."""
        return self.faults.empty_answers and self.faults.applies_to(request.path)

    def draw(self) -> float:
        with self._random_lock:
            return self._random.random()


class _HttpServer(ThreadingHTTPServer):
    """Keeps the connections it serves, so `close_connections` can end them: a keep-alive
    connection's thread otherwise waits for the client's next request long after `stop()`."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down every open connection: clients see the end of the stream and the threads
        serving them return."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            # OSError: already closed (a reset connection, a client that went away).
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-request (killed, timed out) is not a server error: no
        traceback for that on stderr."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def _pieces(payload: bytes, padding: int, step: int) -> Iterator[tuple[bytes, bool]]:
    """The payload, then `padding` spaces, `step` bytes at a time (padded: True)."""
    for start in range(0, len(payload), step):
        yield payload[start : start + step], False
    blank = b" " * step
    while padding > 0:
        size = min(step, padding)
        padding -= size
        yield blank[:size], True


def _make_handler(server: SandboxServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "spm-sync-sandbox/1"
        # Headers and body leave in two writes; with Nagle on, the body waits for the ACK of
        # the headers, which the client delays (~40 ms on Linux) on a keep-alive connection:
        # every answer would take 40 ms longer than the configured latency.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: tests and benchmarks would drown in access logs."""

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            request = SandboxRequest(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers=self.headers,
                body=body,
            )
            faults = server.faults
            if faults.latency_ms or faults.jitter_ms:
                time.sleep((faults.latency_ms + server.draw() * faults.jitter_ms) / 1000)
            if faults.applies_to(request.path):
                if faults.redirect_to:
                    self._redirect(faults.redirect_to)
                    return
                if server.draw() < faults.reset_rate:
                    self._reset_connection()
                    return
                injected = self._injected_error(faults)
                if injected is not None:
                    self._send(injected, slow=False)
                    return
            response, route_name = server.dispatch(request)
            with server.lock:
                server.counts[route_name] += 1
            hostile = faults.applies_to(request.path)
            if hostile and (faults.trickle_seconds > 0 or faults.padding_mb > 0):
                self._send_hostile(response, faults)
                return
            slow = hostile and server.draw() < faults.slow_body_rate
            self._send(response, slow=slow)

        def _injected_error(self, faults: Faults) -> SandboxResponse | None:
            roll = server.draw()
            if roll < faults.throttle_rate:
                status = 429
            elif roll < faults.throttle_rate + faults.unavailable_rate:
                status = 503
            else:
                return None
            response = server.throttled_response(status)
            response.headers.setdefault("Retry-After", str(faults.retry_after_seconds))
            return response

        def _redirect(self, base_url: str) -> None:
            self.send_response(307)
            self.send_header("Location", base_url.rstrip("/") + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _send_hostile(self, response: SandboxResponse, faults: Faults) -> None:
            """A trickling and/or padded answer, written until done or the client goes away."""
            payload = response.encoded()
            padding = int(faults.padding_mb * 2**20)
            chunked = padding > 0 and faults.padding_unsized
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(len(payload) + padding))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            step = 1 if faults.trickle_seconds > 0 else 64 * 1024
            try:
                for piece, padded in _pieces(payload, padding, step):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                    self.wfile.flush()
                    if padded:
                        with server.lock:
                            server.padding_sent += len(piece)
                    if faults.trickle_seconds > 0:
                        time.sleep(faults.trickle_seconds)
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")
            except OSError:
                self.close_connection = True  # the client gave up (as it should)

        def _reset_connection(self) -> None:
            # SO_LINGER with a zero timeout makes close() send RST: the client sees
            # "connection reset by peer", as with a load balancer dropping the connection.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()

        def _send(self, response: SandboxResponse, *, slow: bool) -> None:
            payload = response.encoded()
            self.send_response(response.status)
            if payload:
                self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if not slow or len(payload) < 2:
                self.wfile.write(payload)
                return
            # A slow body: the headers arrive at once, the bytes trickle in over the period.
            pieces = 8
            step = max(1, len(payload) // pieces)
            pause = server.faults.slow_body_seconds / pieces
            for start in range(0, len(payload), step):
                self.wfile.write(payload[start : start + step])
                self.wfile.flush()
                time.sleep(pause)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle

    return Handler
