"""What `spm-sync run`, `demo`, `report` and `undo` print at the end: rich tables.

On a terminal they are coloured; piped into a log they degrade to plain text columns. Cells
fold instead of ending in "…", so no name or message is cut off on a narrow terminal. The
run's problems go to stderr with the other diagnostics (`spm_sync.cli.terminal`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.table import Table

from spm_sync.cli.terminal import diagnostics_console, results_console
from spm_sync.core.results import CycleResult
from spm_sync.store import AuditRow

STATUS_STYLE = {"ok": "green", "partial": "yellow", "failed": "red"}
AUDIT_STATUSES = ("written", "unchanged", "conflict", "failed", "planned")


def output_console() -> Console:
    """The results console (`spm_sync.cli.terminal`): stdout, pipe-safe, silent under -q."""
    return results_console()


def connections_table(result: CycleResult) -> Table:
    style = STATUS_STYLE[result.status]
    table = Table(
        title=f"Run {result.run_id}: [{style}]{result.status}[/{style}] ({result.mode} mode)"
    )
    table.add_column("connection", overflow="fold")
    table.add_column("sync", overflow="fold")
    for column in ("items", "gone", "requests", "retries", "seconds"):
        table.add_column(column, justify="right", overflow="fold")
    table.add_column("status", overflow="fold")
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
    table.add_column("figure", overflow="fold")
    table.add_column("value", justify="right", overflow="fold")
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


def audit_summary(rows: Sequence[AuditRow], title: str) -> Table:
    """The audit log of one run in a few lines: writes by connection and field, one column
    per outcome (a run of thousands of writes would otherwise fill the terminal)."""
    counts: Counter[tuple[str, str, str]] = Counter(
        (row.write.connection, row.write.field.value, str(row.status)) for row in rows
    )
    pairs = sorted({(connection, field) for connection, field, _ in counts})
    statuses = [status for status in AUDIT_STATUSES if any(k[2] == status for k in counts)]
    statuses += sorted({k[2] for k in counts} - set(AUDIT_STATUSES))
    table = Table(title=title)
    table.add_column("connection", overflow="fold")
    table.add_column("field", overflow="fold")
    for status in statuses:
        table.add_column(status, justify="right", overflow="fold")
    for connection, field in pairs:
        figures = [f"{counts[(connection, field, status)]:,}" for status in statuses]
        table.add_row(connection, field, *figures)
    return table


def _show(value: object) -> str:
    if value is None:
        return "∅"
    if isinstance(value, tuple | list):
        return ", ".join(_show(part) for part in value) or "(none)"
    if isinstance(value, float):
        return _number(value)
    return str(value)


def _number(value: float) -> str:
    """A float as a person reads it: Azure DevOps ranks chosen between two neighbours are
    15666.666666666666 to Python; four decimals tell any two of them apart."""
    if value.is_integer():
        return str(int(value))
    return f"{value:.4f}".rstrip("0").rstrip(".")


def print_cycle(console: Console, result: CycleResult, lines: Iterable[str] = ()) -> None:
    console.print(connections_table(result))
    console.print(headline_table(result))
    diagnostics = diagnostics_console()  # problems are diagnostics: stderr, even under -q
    for problem in result.problems:
        diagnostics.print(f"[red]✗[/red] {problem}", highlight=False, soft_wrap=True)
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)
