"""WIQL's date macros, the ones a measure bounded in time uses ("closed this month":
`[Microsoft.VSTS.Common.StateChangeDate] >= @StartOfMonth`): `@Today`, `@StartOfDay`,
`@StartOfWeek`, `@StartOfMonth` and `@StartOfYear`, each with an optional `+ n` / `- n` offset in
its own period (`@Today - 7` is a week ago, `@StartOfMonth - 1` the first of last month, as in
"Query by date or current iteration", learn.microsoft.com/azure/devops/boards/queries/
query-by-date-or-current-iteration). Assumption where the service uses the team's settings: a
week starts on Sunday. The service counts days in the organization's time zone; the sandbox
in UTC (see `wiql_eval`).
"""

from __future__ import annotations

from datetime import date, timedelta

MACROS = frozenset({"@today", "@startofday", "@startofweek", "@startofmonth", "@startofyear"})


def macro_day(name: str, offset: float, today: date) -> date | None:
    """The day a date macro means (None for another macro)."""
    if name not in MACROS:
        return None
    steps = int(offset)
    if name in ("@today", "@startofday"):
        return today + timedelta(days=steps)
    if name == "@startofweek":
        sunday = today - timedelta(days=(today.weekday() + 1) % 7)
        return sunday + timedelta(weeks=steps)
    if name == "@startofyear":
        return date(today.year + steps, 1, 1)
    months = today.month - 1 + steps
    return date(today.year + months // 12, months % 12 + 1, 1)
