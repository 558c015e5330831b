"""How the report writes numbers: one place, so the HTML, the text, the chart labels and their
alt text always show a figure the same way ("1,234", "41.9%", "2 min 05 s")."""

from __future__ import annotations


def format_pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def format_count(value: float | None) -> str:
    if value is None:
        return "n/a"
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def format_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"
