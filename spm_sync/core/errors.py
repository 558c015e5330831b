"""Errors whose message is written for the user, and the one-line description of any error.

A tracker answer the user can fix (bad URL, auth, an unknown field name) and a failed SMTP
login reach the same report line; `describe` makes that line the same way wherever the error
was caught, without the catcher knowing which package raised it.
"""

from __future__ import annotations


class ReportedError(Exception):
    """An error whose message is meant for the user as it is (no exception type in front)."""


def describe(error: BaseException) -> str:
    """A one-line message for the report: the user's own words for `ReportedError`s, the type
    and the first line of the message for anything else."""
    if isinstance(error, ReportedError):
        return str(error)
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
