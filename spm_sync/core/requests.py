"""How many requests a connection asked, where they went, and how often the tracker slowed us.

Connectors count into it; the result document and the benchmarks read it. It lives in the
core because both sides need the one type, and neither should import the other.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class RequestStats:
    """Thread-safe request accounting for one connector over one run.

    `by_endpoint` keys look like "POST /rest/api/3/search/jql" with ids replaced by
    placeholders, so the report and the benchmarks can show where the calls went.
    """

    by_endpoint: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    throttled: int = 0
    waited_seconds: float = 0.0
    rate_limit: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def requests(self) -> int:
        with self._lock:  # a counting thread may add an endpoint while we sum
            return sum(self.by_endpoint.values())

    def count(self, endpoint: str) -> None:
        with self._lock:
            self.by_endpoint[endpoint] += 1

    def retried(self, waited: float, throttled: bool) -> None:
        with self._lock:
            self.retries += 1
            self.waited_seconds += waited
            if throttled:
                self.throttled += 1

    def paced(self, waited: float) -> None:
        """A success asked us to slow down (Retry-After on a 200, X-RateLimit-Delay)."""
        with self._lock:
            self.throttled += 1
            self.waited_seconds += waited

    def saw_rate_limit_headers(self, headers: dict[str, str]) -> None:
        with self._lock:
            self.rate_limit.update(headers)

    def as_dict(self) -> dict[str, object]:
        with self._lock:
            by_endpoint = dict(sorted(self.by_endpoint.items()))
            return {
                "requests": sum(by_endpoint.values()),
                "by_endpoint": by_endpoint,
                "retries": self.retries,
                "throttled": self.throttled,
                "waited_seconds": round(self.waited_seconds, 3),
                "rate_limit": dict(self.rate_limit),
            }
