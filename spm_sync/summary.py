"""What `spm-sync run`, `demo`, `report` and `undo` print at the end: rich tables.

On a terminal they are coloured; piped into a log they degrade to plain text columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.table import Table

from spm_sync.results import CycleResult
from spm_sync.store import AuditRow

STATUS_STYLE = {"ok": "green", "partial": "yellow", "failed": "red"}
LOG_WIDTH = 120
"""Width of the tables when the output is not a terminal (rich would assume 80 columns)."""


def output_console() -> Console:
    """stdout; piped into a log, wide enough that the tables keep every column."""
    console = Console()
    return console if console.is_terminal else Console(width=LOG_WIDTH)


def connections_table(result: CycleResult) -> Table:
    style = STATUS_STYLE[result.status]
    table = Table(
        title=f"Run {result.run_id}: [{style}]{result.status}[/{style}] ({result.mode} mode)"
    )
    table.add_column("connection", no_wrap=True)
    table.add_column("sync", no_wrap=True)
    for column in ("items", "gone", "requests", "retries", "seconds"):
        table.add_column(column, justify="right")
    table.add_column("status")
    for health in result.connections:
        status = "[red]failed[/red]" if health.error else "[green]ok[/green]"
        if health.deletions_held_back and not health.error:
            status = "[yellow]deletions held back[/yellow]"
        table.add_row(
            health.name,
            health.sync,
            f"{health.items_pulled:,}",
            f"{health.deleted_detected:,}",
            f"{health.requests_total:,}",
            f"{health.retries:,}",
            f"{health.duration_seconds:.1f}",
            status,
        )
    return table


def headline_table(result: CycleResult) -> Table:
    headline = result.headline
    counts = result.writes.counts
    table = Table(show_header=False, title="Headline")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("aligned (items)", _percent(headline.alignment_pct_items)),
        ("aligned (job size)", _percent(headline.alignment_pct_job_size)),
        ("orphans", f"{headline.orphans:,}"),
        ("key results without active work", f"{headline.uncovered_key_results:,}"),
        ("scored / unscored", f"{len(result.wsjf) - headline.unscored:,} / {headline.unscored:,}"),
        ("writes planned", f"{headline.writes_planned:,}"),
    ]
    if result.mode == "apply":
        rows += [
            (f"writes {status}", f"{counts[status]:,}")
            for status in ("written", "unchanged", "conflict", "failed", "planned")
            if counts[status]
        ]
    for label, value in rows:
        table.add_row(label, value)
    return table


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} %"


def audit_table(rows: Sequence[AuditRow], title: str) -> Table:
    """The audit log of one run: every planned write and what became of it."""
    table = Table(title=title)
    for column in ("status", "connection", "key", "field", "old → new", "revision", "error"):
        table.add_column(column, overflow="fold")
    for row in rows:
        write = row.write
        style = {"written": "green", "conflict": "yellow", "failed": "red"}.get(row.status, "")
        status = f"[{style}]{row.status}[/{style}]" if style else str(row.status)
        table.add_row(
            status,
            write.connection,
            write.item_key,
            write.field.value,
            f"{_show(write.old)} → {_show(write.new)}",
            write.expected_revision,
            row.error or "",
        )
    return table


def _show(value: object) -> str:
    if value is None:
        return "∅"
    if isinstance(value, tuple | list):
        return ", ".join(str(part) for part in value) or "(none)"
    return str(value)


def print_cycle(console: Console, result: CycleResult, lines: Iterable[str] = ()) -> None:
    console.print(connections_table(result))
    console.print(headline_table(result))
    for problem in result.problems:
        console.print(f"[red]✗[/red] {problem}", highlight=False)
    for line in lines:
        console.print(line)
