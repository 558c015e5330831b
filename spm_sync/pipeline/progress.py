"""Progress of a cycle as quiet key=value log lines (the bars on a terminal: `cli.progress_bars`).

A nightly job's output goes to a log collector (journald, cron mail), where a progress bar is
noise and a line per event is what people grep: `event=pull.done connection=jira-cloud
items=3120 requests=37 seconds=4.2`. On an interactive terminal the same events drive a rich
progress display instead. Log lines carry names, counts and durations only, never URLs with
credentials, tokens or field values, so they are safe to ship anywhere.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime
from typing import Protocol

log = logging.getLogger("spm_sync.pipeline.cycle")

PULL_LOG_EVERY = 5000
"""A non-TTY pull logs its count every this many items (a 200,000 item pull: 40 lines)."""


def kv(event: str, **fields: object) -> str:
    """`event=<event> key=value ...`; values with spaces are JSON-quoted, None is `-`."""
    parts = [f"event={event}"]
    for key, value in fields.items():
        parts.append(f"{key}={value_text(value)}")
    return " ".join(parts)


def value_text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") or "0"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    text = str(value)
    if not text or any(char.isspace() or char in '"=' for char in text):
        return json.dumps(text, ensure_ascii=False)
    return text


class CycleProgress(Protocol):
    """What the pipeline reports while it works (called from several threads)."""

    def stage(self, name: str, **fields: object) -> None: ...

    def pull_started(self, connection: str, since: datetime | None) -> None: ...

    def pulled(self, connection: str, count: int) -> None: ...

    def pull_finished(self, connection: str, **fields: object) -> None: ...

    def close(self) -> None: ...


class LogProgress:
    """Structured log lines (logger `spm_sync.pipeline.cycle`, level INFO)."""

    def __init__(self, logger: logging.Logger = log) -> None:
        self._log = logger
        self._logged: dict[str, int] = {}
        self._lock = threading.Lock()

    def stage(self, name: str, **fields: object) -> None:
        self._log.info(kv(f"stage.{name}", **fields))

    def pull_started(self, connection: str, since: datetime | None) -> None:
        sync = "full" if since is None else "incremental"
        self._log.info(kv("pull.start", connection=connection, sync=sync, since=since))

    def pulled(self, connection: str, count: int) -> None:
        with self._lock:
            last = self._logged.get(connection, 0)
            if count - last < PULL_LOG_EVERY:
                return
            self._logged[connection] = count
        self._log.info(kv("pull.progress", connection=connection, items=count))

    def pull_finished(self, connection: str, **fields: object) -> None:
        self._log.info(kv("pull.done", connection=connection, **fields))

    def close(self) -> None:
        """Nothing to release."""
