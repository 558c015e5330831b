"""JQL's calendar functions, the ones a measure bounded in time uses ("done this quarter":
`statusCategory = Done AND updated >= startOfMonth(-2)`): `startOfDay`, `startOfWeek`,
`startOfMonth`, `startOfYear` and their `endOf…` twins.

Semantics (Atlassian, "JQL functions"): each takes an optional increment `(+/-)nn(y|M|w|d|h|m)`;
without a unit it counts the function's own period (`startOfMonth(-1)` is the first of last
month, `startOfMonth("+14d")` the fifteenth of this one). The period is the user's: its zone
comes from the caller. Assumption where Atlassian leaves it to the locale: a week starts on
Sunday (the default locale, en_US). `endOf…` is the last millisecond of the period, so
`<= endOfDay()` includes the whole day.
"""

from __future__ import annotations

import calendar
import re
from datetime import datetime, timedelta

PERIODS = ("day", "week", "month", "year")
_INCREMENT = re.compile(r"^([-+]?)\s*(\d+)\s*([yMwdhm]?)$")
_OWN_UNIT = {"day": "d", "week": "w", "month": "M", "year": "y"}


def calendar_moment(name: str, argument: str | None, now: datetime) -> datetime | None:
    """What `startOfX(argument)` / `endOfX(argument)` mean at `now` (aware, the user's zone);
    None for another function or an increment JQL does not accept."""
    lowered = name.lower()
    kind, _, period = lowered.partition("of")
    if kind not in ("start", "end") or period not in PERIODS:
        return None
    amount, unit = 0, _OWN_UNIT[period]
    if argument is not None and argument.strip():
        match = _INCREMENT.match(argument.strip())
        if match is None:
            return None
        sign, digits, given = match.groups()
        amount = -int(digits) if sign == "-" else int(digits)
        unit = given or unit
    own = _OWN_UNIT[period]
    start = _start(period, now)
    if unit == own:  # whole periods: move the period, then take its start or end
        start, amount = _shifted(start, amount, unit), 0
    moment = start if kind == "start" else _shifted(start, 1, own) - timedelta(milliseconds=1)
    return _shifted(moment, amount, unit)


def _start(period: str, now: datetime) -> datetime:
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return midnight
    if period == "week":
        return midnight - timedelta(days=(midnight.weekday() + 1) % 7)  # back to Sunday
    if period == "month":
        return midnight.replace(day=1)
    return midnight.replace(month=1, day=1)


def _shifted(moment: datetime, amount: int, unit: str) -> datetime:
    if unit in ("M", "y"):
        months = moment.month - 1 + amount * (12 if unit == "y" else 1)
        year, month = moment.year + months // 12, months % 12 + 1
        day = min(moment.day, calendar.monthrange(year, month)[1])
        return moment.replace(year=year, month=month, day=day)
    seconds = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60}[unit]
    return moment + timedelta(seconds=amount * seconds)
