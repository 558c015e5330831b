"""One HTTP policy for every connector: count each request, back off on 429/503, honour
Retry-After, and pause when a tracker asks us to slow down on a successful answer.

It is a `requests` transport adapter, so it slots under both client libraries without patching
them: the `jira` library's session and msrest's session (azure-devops) are plain
`requests.Session`s. Mount it with `mount_policy(session, ...)` and switch the libraries' own
retries off so backoff is never stacked (the `jira` library retries 429/503 three times with its
own delays; msrest retries 5xx through urllib3).

Retry-After semantics (Atlassian rate-limiting page; Azure DevOps rate-limits page):
- 429 and 503 may carry `Retry-After` in seconds (or an HTTP date); retrying earlier fails.
- Jira sometimes sends `Beta-Retry-After`; Azure DevOps sends `Retry-After` on a *200* while it
  delays us, and `X-RateLimit-Delay` with the delay it applied.

The adapter also enforces the transfer limits of `connectors.transfer` (deadlines, answer size,
cross-host redirects). Both libraries send with `stream=False` (msrest with `stream=True` and
reads the body right after); the adapter always streams and reads the body itself, in large
chunks, so it can stop at the size limit and the watchdog can end a body that trickles.
"""

from __future__ import annotations

import contextlib
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from connectors.settings import RetrySettings
from connectors.transfer import (
    WATCHDOG,
    WATCHED_POOLS,
    PullDeadline,
    PullDeadlineExceeded,
    RequestDeadlineExceeded,
    TransferBounds,
    TransferLimitError,
    capped_timeout,
    check_redirect,
    guarded,
    read_body,
    watch_answer,
)
from spm_sync.core.requests import RequestStats

RATE_LIMIT_HEADERS = (
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-RateLimit-NearLimit",
    "X-RateLimit-Resource",
    "X-RateLimit-Delay",
    "RateLimit-Reason",
    "Retry-After",
    "Beta-Retry-After",
)
RETRYABLE_STATUS = frozenset({429, 503})

_ID_SEGMENT = re.compile(r"^(\d+|[A-Z][A-Z0-9_]*-\d+)$")
_NAMED_AFTER = {"workitemtypes": "{type}"}
"""Collections whose members are names, not ids (Azure DevOps work item types)."""


def endpoint_name(request: requests.PreparedRequest) -> str:
    """'GET /rest/api/3/issue/{id}': ids, issue keys and type names folded, for counting.

    The API version after `/api/` is kept, so Jira Cloud v3 and Data Center v2 counts stay apart.
    """
    parts = urlsplit(request.url or "").path.split("/")
    named: list[str] = []
    for index, part in enumerate(parts):
        previous = parts[index - 1].lower() if index else ""
        if previous == "api":
            named.append(part)
        elif previous in _NAMED_AFTER:
            named.append(_NAMED_AFTER[previous])
        elif _ID_SEGMENT.match(part):
            named.append("{id}")
        else:
            named.append(part)
    return f"{request.method} {'/'.join(named)}"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After value: delta-seconds (also fractional) or HTTP-date."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        # An HTTP-date is always GMT (RFC 9110 5.6.7); "-0000" or no zone parses naive, which
        # `timestamp()` would read in the machine's local time.
        when = when.replace(tzinfo=UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: `max_attempts` tries in all, waits capped at `max_wait` each.

    Without a Retry-After the wait is exponential from `base_delay`, with full jitter between
    half and all of it so parallel workers do not retry in lockstep. With a Retry-After we wait
    at least that long (plus up to 10% jitter); a Retry-After beyond `max_wait` ends the retries,
    because a nightly job should report the throttling instead of sleeping for an hour.
    """

    max_attempts: int = 6
    base_delay: float = 0.5
    max_wait: float = 120.0

    @classmethod
    def from_settings(cls, retry: RetrySettings) -> RetryPolicy:
        """The policy a connection's `retry` settings describe."""
        return cls(retry.max_attempts, retry.base_delay_seconds, retry.max_wait_seconds)

    def backoff(self, attempt: int, retry_after: float | None) -> float | None:
        if retry_after is not None:
            if retry_after > self.max_wait:
                return None
            return retry_after * random.uniform(1.0, 1.1)
        ceiling = min(self.max_wait, self.base_delay * 2**attempt)
        return ceiling * random.uniform(0.5, 1.0)


class RetryableResponse(Exception):
    """Raised inside the retry loop for a 429/503, carrying the response for the wait logic."""

    def __init__(self, response: requests.Response, retry_after: float | None) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.retry_after = retry_after


class RetryBudgetExceeded(requests.HTTPError):
    """Retry-After asked for longer than the policy allows."""


class PolicyAdapter(HTTPAdapter):
    """Counts, retries and paces every request sent through it, within `bounds` (and within
    `pull_deadline` while a pull is open)."""

    def __init__(
        self,
        stats: RequestStats,
        policy: RetryPolicy | None = None,
        *,
        name_endpoint: Callable[[requests.PreparedRequest], str] = endpoint_name,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        pool_maxsize: int = 16,
        bounds: TransferBounds | None = None,
        pull_deadline: PullDeadline | None = None,
    ) -> None:
        super().__init__(pool_connections=4, pool_maxsize=pool_maxsize, max_retries=0)
        self.bounds = bounds or TransferBounds()
        self.pull_deadline = pull_deadline
        self.stats = stats
        self.policy = policy or RetryPolicy()
        self._name_endpoint = name_endpoint
        self._sleep = sleep
        self._clock = clock
        self._pause_until = 0.0
        self._pause_lock = threading.Lock()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """Pools whose connections the deadline watchdog can shut down (`connectors.transfer`)."""
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = WATCHED_POOLS

    def send(self, request: requests.PreparedRequest, **kwargs: object) -> requests.Response:  # type: ignore[override]
        endpoint = self._name_endpoint(request)
        retrying = Retrying(
            stop=stop_after_attempt(self.policy.max_attempts),
            retry=retry_if_exception_type(
                (RetryableResponse, requests.ConnectionError, requests.Timeout)
            ),
            wait=self._wait,
            before_sleep=self._retrying,
            sleep=self._sleep,
            reraise=True,
        )
        try:
            return retrying(self._send_once, endpoint, request, kwargs)
        except RetryableResponse as exhausted:
            # Out of attempts: hand the last 429/503 to the caller, which reports it.
            return exhausted.response

    def _send_once(
        self, endpoint: str, request: requests.PreparedRequest, kwargs: dict[str, object]
    ) -> requests.Response:
        self._respect_pause()
        deadline, pull_bound = self._deadline(endpoint)
        self.stats.count(endpoint)
        response = self._transfer(endpoint, request, kwargs, deadline, pull_bound)
        seen = {h: response.headers[h] for h in RATE_LIMIT_HEADERS if h in response.headers}
        if seen:
            self.stats.saw_rate_limit_headers(seen)
        retry_after = parse_retry_after(
            response.headers.get("Retry-After") or response.headers.get("Beta-Retry-After")
        )
        if response.status_code in RETRYABLE_STATUS:
            raise RetryableResponse(response, retry_after)
        delay_hint = retry_after or parse_retry_after(response.headers.get("X-RateLimit-Delay"))
        if delay_hint:
            # A success that says "slow down": pace the next requests instead of retrying.
            self._pause_for(min(delay_hint, self.policy.max_wait))
        return response

    def _deadline(self, endpoint: str) -> tuple[float, bool]:
        """When this attempt must be over, and whether the pull's deadline is the one that
        counts; raises when the pull has no time left at all."""
        now = time.monotonic()
        deadline = now + self.bounds.request_seconds
        pull_at = self.pull_deadline.at() if self.pull_deadline is not None else None
        if pull_at is None or pull_at > deadline:
            return deadline, False
        if pull_at <= now:
            raise self._late(endpoint, pull_bound=True)
        return pull_at, True

    def _transfer(
        self,
        endpoint: str,
        request: requests.PreparedRequest,
        kwargs: dict[str, Any],
        deadline: float,
        pull_bound: bool,
    ) -> requests.Response:
        """One attempt, connect to last byte, under the watchdog; the body is read here."""
        guard = WATCHDOG.watch(deadline, pull_bound=pull_bound)
        with guarded(guard):
            timeout = capped_timeout(kwargs.get("timeout"), deadline - time.monotonic())
            try:
                response = super().send(request, **{**kwargs, "stream": True, "timeout": timeout})
                watch_answer(guard, response)
                check_redirect(response, endpoint)
                read_body(response, self.bounds.max_bytes, endpoint)
            except TransferLimitError:
                raise
            except Exception:
                # A read the watchdog cut, or a socket timeout capped to the time left.
                if guard.fired or time.monotonic() >= deadline - 0.05:
                    raise self._late(endpoint, pull_bound=pull_bound) from None
                raise
        return response

    def _late(self, endpoint: str, *, pull_bound: bool) -> TransferLimitError:
        if pull_bound:
            seconds = self.pull_deadline.seconds if self.pull_deadline else 0.0
            return PullDeadlineExceeded(
                f"the pull did not finish within {seconds:g} s (limits.pull_deadline_seconds); "
                f"stopped at {endpoint}, so the pull is incomplete"
            )
        return RequestDeadlineExceeded(
            f"{endpoint}: no complete answer within {self.bounds.request_seconds:g} s "
            "(limits.request_deadline_seconds); the server stalls or sends too slowly"
        )

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        retry_after = error.retry_after if isinstance(error, RetryableResponse) else None
        delay = self.policy.backoff(state.attempt_number - 1, retry_after)
        if delay is None:
            assert isinstance(error, RetryableResponse)
            raise RetryBudgetExceeded(
                f"{error.response.status_code} with Retry-After {retry_after:.0f}s, more than "
                f"the {self.policy.max_wait:.0f}s this run may wait",
                response=error.response,
            )
        pull_at = self.pull_deadline.at() if self.pull_deadline is not None else None
        if pull_at is not None and time.monotonic() + delay > pull_at:
            raise self._late("waiting to retry", pull_bound=True)
        return delay

    def _retrying(self, state: RetryCallState) -> None:
        """Counts a retry that will happen (tenacity asks for the wait before it checks the
        attempts left, so `_wait` also runs after the last one) and finishes the answer it
        replaces: left unread, it would hold its connection until garbage collection, and the
        retry would open another (read to the end, the kept-alive connection serves the retry)."""
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RetryableResponse):
            with contextlib.suppress(requests.RequestException):
                _ = error.response.content  # read to the end, the connection is free
            error.response.close()
        self.stats.retried(state.upcoming_sleep, throttled=isinstance(error, RetryableResponse))

    def _pause_for(self, seconds: float) -> None:
        with self._pause_lock:
            self._pause_until = max(self._pause_until, self._clock() + seconds)

    def _respect_pause(self) -> None:
        with self._pause_lock:
            remaining = self._pause_until - self._clock()
        if remaining > 0:
            self.stats.paced(remaining)
            self._sleep(remaining)


def mount_policy(
    session: requests.Session,
    stats: RequestStats,
    policy: RetryPolicy | None = None,
    **adapter_options: object,
) -> PolicyAdapter:
    """Route every http(s) request of `session` through one `PolicyAdapter`."""
    adapter = PolicyAdapter(stats, policy, **adapter_options)  # type: ignore[arg-type]
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return adapter
