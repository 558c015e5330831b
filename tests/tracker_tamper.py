"""Tampering with the answers of the sandbox trackers, for the bad-input tests.

`tampered(...)` intercepts the client side with `responses` (the connectors and both client
libraries send through `requests`): requests to the sandboxes pass through untouched, except
those whose URL matches a rule, which get a replacement body, either fixed (a corpus file) or
derived from the real answer (`forward` asks the sandbox over plain `http.client`, which
`responses` does not intercept, and the rule rewrites the bytes).
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
import responses

Rewrite = Callable[[bytes], bytes]


@dataclass(frozen=True)
class Rule:
    """Answer requests whose URL contains a match of the pattern `url` (ignoring case) with
    `body`, or with the real answer passed through `rewrite`."""

    url: str
    body: bytes | None = None
    rewrite: Rewrite | None = None
    content_type: str = "application/json; charset=utf-8"
    status: int = 200


def forward(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
    """Send `request` to the sandbox for real and return its answer."""
    parts = urlsplit(request.url or "")
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    body = request.body.encode() if isinstance(request.body, str) else request.body
    try:
        connection.request(request.method or "GET", path, body=body, headers=dict(request.headers))
        answer = connection.getresponse()
        data = answer.read()
        content_type = answer.getheader("Content-Type") or "application/json"
        return answer.status, {"Content-Type": content_type}, data
    finally:
        connection.close()


def _callback(
    rule: Rule,
) -> Callable[[requests.PreparedRequest], tuple[int, dict[str, str], bytes]]:
    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        if rule.body is not None:
            return rule.status, {"Content-Type": rule.content_type}, rule.body
        assert rule.rewrite is not None
        status, headers, data = forward(request)
        return status, headers, rule.rewrite(data)

    return answer


@contextmanager
def tampered(*rules: Rule) -> Iterator[responses.RequestsMock]:
    """While open, matching requests get the rules' answers; all others reach the sandbox."""
    # `responses` matches a pattern at the start of the URL: the rules' patterns may match
    # anywhere in it.
    patterns = [re.compile(f".*{rule.url}", re.IGNORECASE) for rule in rules]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for rule, pattern in zip(rules, patterns, strict=True):
            for method in ("GET", "POST", "PUT", "PATCH"):
                mock.add_callback(method, pattern, callback=_callback(rule))
        mock.add_passthru(re.compile(r"^http://127\.0\.0\.1:\d+/"))
        yield mock
