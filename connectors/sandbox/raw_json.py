"""Pre-encoded JSON for the sandboxes' item answers, and the cache that keeps it.

The sandboxes are test doubles in one Python process: rendering an item to JSON and encoding
it costs more CPU than everything else an answer needs, and on a 2-core machine that CPU is
taken from the client being measured. So each item's JSON is encoded once per (API version,
requested field set, expansion) and kept as bytes, and an answer splices those bytes into its
envelope (`encode_answer`). The cache is dropped whole whenever the tracker's data changes
(any edit, rank move, link change, delete or visibility switch bumps the store's version): one
item's JSON can embed other items (a Jira issue carries its parent's and linked issues' summary
and status), so dropping single entries would need a dependency graph for no gain in a double.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Mapping
from typing import Any

MAX_ENTRIES = 250_000
"""Enough for every item of a 50,000-item sandbox in a few field sets (a few hundred MB at
most); past it the cache starts over rather than grow without bound."""


class RawJson(bytes):
    """JSON that is already encoded; `encode_answer` copies it into the answer verbatim."""


def dumps(value: Any) -> bytes:
    """The sandboxes' compact encoding (as `SandboxResponse.encoded` writes bodies)."""
    return json.dumps(value, separators=(",", ":")).encode()


def encode_answer(body: Any) -> bytes:
    """`body` as JSON bytes, where `RawJson` values (also inside lists, and lists inside the
    top-level object) are spliced in as they are instead of being encoded again."""
    if isinstance(body, RawJson):
        return bytes(body)
    if isinstance(body, list) and any(isinstance(value, RawJson) for value in body):
        return b"[" + b",".join(encode_answer(value) for value in body) + b"]"
    if isinstance(body, dict) and any(_holds_raw(value) for value in body.values()):
        members = (dumps(str(key)) + b":" + encode_answer(value) for key, value in body.items())
        return b"{" + b",".join(members) + b"}"
    return dumps(body)


def _holds_raw(value: Any) -> bool:
    return isinstance(value, RawJson) or (
        isinstance(value, list) and any(isinstance(item, RawJson) for item in value)
    )


class RenderCache:
    """Encoded items by key, valid for one version of the data (the caller holds the lock)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._version: int | None = None
        self._entries: dict[Hashable, RawJson] = {}

    def get(self, version: int, key: Hashable, render: Callable[[], Mapping[str, Any]]) -> RawJson:
        """The encoded item for `key`, rendering it with `render()` on a miss."""
        if version != self._version:
            self._entries.clear()
            self._version = version
        encoded = self._entries.get(key)
        if encoded is not None:
            self.hits += 1
            return encoded
        self.misses += 1
        encoded = RawJson(dumps(render()))
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = encoded
        return encoded

    def clear(self) -> None:
        self._entries.clear()
        self._version = None

    def __len__(self) -> int:
        return len(self._entries)
