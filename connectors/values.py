"""Tracker field values as numbers: one rule for every connector.

Trackers hold WSJF inputs in number fields, select options (`{"value": "8"}` in Jira) and,
too often, text fields ("8", " 8.0 ", "big"). A value that is not a number must never become
zero: the item is reported with the reason instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


class NotANumber(ValueError):
    def __init__(self, shown: object) -> None:
        super().__init__(f"{shown!r} is not a number")
        self.shown = shown


def to_number(value: Any) -> float | None:
    """A field value as a float: numbers, select options ({"value": "8"}) and numeric strings
    ("8", " 8.0 "). None or an empty string is "no value". Raises `NotANumber` otherwise, also
    for booleans, NaN and infinities."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise NotANumber(value)
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise NotANumber(value)
        return float(value)
    if isinstance(value, Mapping) and "value" in value:
        return to_number(value["value"])
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            number = float(text)
        except ValueError:
            raise NotANumber(value) from None
        if not math.isfinite(number):
            raise NotANumber(value)
        return number
    raise NotANumber(value)


def number_or_problem(value: Any) -> tuple[float | None, str | None]:
    """`to_number` for callers that report instead of raising: (number, None), (None, None)
    when there is no value, or (None, "'big' is not a number")."""
    try:
        return to_number(value), None
    except NotANumber as problem:
        return None, str(problem)
