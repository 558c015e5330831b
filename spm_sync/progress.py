"""Progress of a cycle: bars on a terminal, quiet key=value log lines everywhere else.

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

from rich.console import Console
from rich.progress import (
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from spm_sync.terminal import is_quiet

log = logging.getLogger("spm_sync.cycle")

PULL_LOG_EVERY = 5000
"""A non-TTY pull logs its count every this many items (a 200,000 item pull: 40 lines)."""


def kv(event: str, **fields: object) -> str:
    """`event=<event> key=value ...`; values with spaces are JSON-quoted, None is `-`."""
    parts = [f"event={event}"]
    for key, value in fields.items():
        parts.append(f"{key}={_value(value)}")
    return " ".join(parts)


def _value(value: object) -> str:
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
    """Structured log lines (logger `spm_sync.cycle`, level INFO)."""

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


class RichProgress(LogProgress):
    """A spinner and a running count per connection; stage lines above it."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self._console = console
        self._bars = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            TextColumn("{task.completed:>8,.0f} items"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[state]}"),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._bars.start()

    def stage(self, name: str, **fields: object) -> None:
        super().stage(name, **fields)
        details = " ".join(f"{key}={_value(value)}" for key, value in fields.items())
        self._bars.console.print(f"[dim]{name}[/dim] {details}".rstrip(), highlight=False)

    def pull_started(self, connection: str, since: datetime | None) -> None:
        super().pull_started(connection, since)
        state = "full sync" if since is None else "incremental"
        with self._lock:
            self._tasks[connection] = self._bars.add_task(connection, total=None, state=state)

    def pulled(self, connection: str, count: int) -> None:
        task = self._tasks.get(connection)
        if task is not None:
            self._bars.update(task, completed=count)

    def pull_finished(self, connection: str, **fields: object) -> None:
        super().pull_finished(connection, **fields)
        task = self._tasks.get(connection)
        if task is not None:
            state = "failed" if fields.get("error") else "done"
            items = fields.get("items")
            total = items if isinstance(items, int | float) else 0
            self._bars.update(task, total=total, state=state)
            self._bars.stop_task(task)

    def close(self) -> None:
        self._bars.stop()


def make_progress(console: Console | None = None, *, show_log: bool = False) -> CycleProgress:
    """Rich progress on an interactive terminal, log lines otherwise; `show_log` makes sure
    those lines are emitted even when logging is left at its quiet default (WARNING)."""
    console = console or Console(stderr=True)
    if is_quiet():  # -q: neither bars nor log lines, only failures
        return LogProgress()
    if console.is_terminal and not console.is_dumb_terminal:
        return RichProgress(console)
    if show_log and log.getEffectiveLevel() > logging.INFO:
        log.setLevel(logging.INFO)
    return LogProgress()
