"""Column types that behave the same on SQLite and PostgreSQL.

SQLite has no time zone type: SQLAlchemy stores the text without an offset and reads back a
naive datetime, while PostgreSQL's timestamptz comes back in the connection's TimeZone. Every
datetime therefore goes in as UTC and comes out timezone-aware in UTC on both backends; a naive
datetime is refused, because guessing its zone is how an incremental sync skips a day.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; use a timezone-aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def json_column() -> JSON:
    """JSON where Python None is SQL NULL (not the JSON text `null`) on both backends."""
    return JSON(none_as_null=True)


def json_default(value: object) -> Any:
    """Encode what `json` cannot: datetimes and dates as ISO 8601, enums as their value,
    sets and tuples as lists."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: object) -> str:
    return json.dumps(value, default=json_default, ensure_ascii=False, separators=(",", ":"))


def utc_now() -> datetime:
    return datetime.now(UTC)
