"""Progress of a cycle on an interactive terminal: a spinner and a running count per
connection, stage lines above it. Everywhere else the cycle's log lines
(`spm_sync.pipeline.progress.LogProgress`) say the same, one event per line."""

from __future__ import annotations

import logging
from datetime import datetime

from rich.console import Console
from rich.progress import (
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from spm_sync.cli.terminal import is_quiet
from spm_sync.pipeline.progress import CycleProgress, LogProgress, log, value_text


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
        details = " ".join(f"{key}={value_text(value)}" for key, value in fields.items())
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
