"""Crontab expressions as APScheduler 3 triggers, with crontab's weekday numbers.

APScheduler 3.x `CronTrigger.from_crontab` passes the day-of-week field through unchanged and
numbers weekdays from 0 = Monday, while crontab numbers them from 0 = Sunday (7 is Sunday too):
`0 6 * * 1-5` would fire Tuesday to Saturday (the `from_crontab` docstring; APScheduler issue
286, fixed only in 4.x). Numeric weekday parts are therefore rewritten to day names, which both
agree on, before the trigger is built.

One crontab rule is not carried over: when both day-of-month and day-of-week are restricted,
crontab fires when *either* matches, APScheduler when *both* do.
"""

from __future__ import annotations

import re
from datetime import tzinfo

from apscheduler.triggers.cron import CronTrigger

DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_NUMERIC_PART = re.compile(r"^(?:(\*)|(\d)(?:-(\d))?)(?:/(\d+))?$")


def weekday_field(field: str) -> str:
    """A crontab day-of-week field with every numeric part spelled as day names."""
    parts: list[str] = []
    for part in field.split(","):
        match = _NUMERIC_PART.match(part)
        if part == "*" or not match:
            parts.append(part)  # `*` and day names mean the same in both; others fail later
            continue
        star, first, last, step = match.groups()
        start, end = (0, 6) if star else (int(first), int(last or first))
        if star is None and last is None and step is not None:
            end = 6  # crontab `5/2` is "from 5 to the end, every 2nd"
        if start > 7 or end > 7 or start > end or step == "0":
            raise ValueError(f"day of week {part!r} is not a range within 0-7")
        days = range(start, end + 1, int(step or 1))
        parts.extend(DAY_NAMES[day % 7] for day in days)
    return ",".join(dict.fromkeys(parts))


def crontab_trigger(expression: str, timezone: tzinfo | str) -> CronTrigger:
    """The trigger for a 5-field crontab expression; `ValueError` with a message for the user."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f"expected 5 fields (minute hour day-of-month month day-of-week), found {len(fields)}"
        )
    fields[4] = weekday_field(fields[4])
    return CronTrigger.from_crontab(" ".join(fields), timezone=timezone)
