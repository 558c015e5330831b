"""Meaning of a parsed WIQL query: fields resolved, values typed, a predicate and a sort key.

Semantics follow the service where it matters to a sync:
- Fields are resolved by reference or display name; an unknown one is `TF51005`.
- String comparisons ignore case. `<>`, `NOT IN`, `NOT CONTAINS` also match empty fields
  (WIQL's "is not" includes items without a value); `= ''` means "is empty".
- `[System.Tags] CONTAINS 'x'` matches the tag `x` (tags are compared whole, ignoring case).
- `UNDER` matches a tree path and everything below it; `CONTAINS` on a tree path is refused.
- Dates: without `timePrecision=true` the service compares calendar days and refuses a literal
  that carries a time ("You cannot supply a time with the date when running a query using date
  precision."); with it, times count and a date-only literal means midnight. The service reads
  days in the organization's time zone; the sandbox uses UTC. `@Today - 7` is seven days back;
  `@StartOfWeek`, `@StartOfMonth`, ... are in `wiql_dates`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from operator import eq, ge, gt, le, lt, ne
from typing import Any

from connectors.sandbox.ado_fields import NUMERIC_TYPES, FieldDef, find_field
from connectors.sandbox.wiql import (
    And,
    Condition,
    Constant,
    Expr,
    Macro,
    Not,
    Or,
    Query,
    WiqlError,
    caused_by,
)
from connectors.sandbox.wiql_dates import MACROS, macro_day

Fields = Mapping[str, Any]
Predicate = Callable[[Fields], bool]

_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:\s+(.+))?$")


@dataclass(frozen=True)
class QueryContext:
    """What a query is run against: `project` is None at organization level."""

    project: str | None
    today: date
    time_precision: bool
    area_paths: frozenset[str]


@dataclass(frozen=True)
class CompiledQuery:
    columns: tuple[FieldDef, ...]
    predicate: Predicate
    order: tuple[tuple[FieldDef, bool], ...]
    changed_since: datetime | None
    """A lower bound on System.ChangedDate every match respects (for the store's index)."""


def compile_query(query: Query, context: QueryContext) -> CompiledQuery:
    columns = tuple(_field(ref.name, ref.text) for ref in query.columns)
    order = tuple((_field(ref.name, ref.text), descending) for ref, descending in query.order)
    predicate: Predicate = (
        (lambda fields: True) if query.where is None else _compile(query.where, context)
    )
    return CompiledQuery(columns, predicate, order, _changed_since(query.where, context))


def _field(name: str, text: str) -> FieldDef:
    field = find_field(name)
    if field is None:
        raise WiqlError(
            f"TF51005: The query references a field that does not exist. {caused_by(text)}"
        )
    return field


def _compile(expr: Expr, context: QueryContext) -> Predicate:
    if isinstance(expr, And):
        return _all_of([_compile(item, context) for item in expr.items])
    if isinstance(expr, Or):
        return _any_of([_compile(item, context) for item in expr.items])
    if isinstance(expr, Not):
        inner = _compile(expr.item, context)
        return lambda fields: not inner(fields)
    return _condition(expr, context)


def _all_of(parts: list[Predicate]) -> Predicate:
    # Chained `and`s, not all(genexpr): a query runs this for every work item (50,000 in a large
    # organization), and the generator costs more than the conditions.
    combined = parts[0]
    for part in parts[1:]:
        combined = _both(combined, part)
    return combined


def _both(first: Predicate, second: Predicate) -> Predicate:
    return lambda fields: first(fields) and second(fields)


def _any_of(parts: list[Predicate]) -> Predicate:
    combined = parts[0]
    for part in parts[1:]:
        combined = _either(combined, part)
    return combined


def _either(first: Predicate, second: Predicate) -> Predicate:
    return lambda fields: first(fields) or second(fields)


def _condition(condition: Condition, context: QueryContext) -> Predicate:
    field = _field(condition.field.name, condition.field.text)
    test = _test(field, condition, context)
    reference = field.reference_name
    if condition.negated:
        return lambda fields: not test(fields.get(reference))
    return lambda fields: test(fields.get(reference))


def _test(field: FieldDef, condition: Condition, context: QueryContext) -> Callable[[Any], bool]:
    operator = condition.operator
    if operator == "empty":
        return _is_empty
    if field.type == "treePath":
        return _tree_test(field, condition, context)
    if operator in ("contains", "words"):
        if field.type in NUMERIC_TYPES or field.type == "dateTime":
            raise WiqlError(
                "The specified operator cannot be used with this field type. "
                + caused_by(condition.text)
            )
        return _contains_test(field, condition, context)
    if operator == "under":
        raise WiqlError(
            "The specified operator can only be used with tree path fields. "
            + caused_by(condition.text)
        )
    if field.type == "dateTime":
        convert: Callable[[Any], Any] = _date_converter(condition, context)
    elif field.type in NUMERIC_TYPES:
        convert = _number
    else:
        convert = _text
    wanted = [_typed_value(field, value, condition, context) for value in condition.values]
    return _comparison(operator, wanted, convert)


def _comparison(
    operator: str, wanted: list[Any], convert: Callable[[Any], Any]
) -> Callable[[Any], bool]:
    if operator == "in":
        options = set(wanted)
        return lambda value: convert(value) in options
    target = wanted[0]
    if target == "" and operator in ("=", "<>"):
        # `[Field] = ''` is WIQL for "has no value".
        return _is_empty if operator == "=" else (lambda value: not _is_empty(value))
    compare = _OPERATORS[operator]
    when_empty = operator == "<>"

    def test(value: Any) -> bool:
        converted = convert(value)
        if converted is None:
            return when_empty
        return compare(converted, target)

    return test


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": eq,
    "<>": ne,
    ">": gt,
    ">=": ge,
    "<": lt,
    "<=": le,
}


# -- values ------------------------------------------------------------------------------------
def _is_empty(value: Any) -> bool:
    return value is None or value == ""


def _number(value: Any) -> float | None:
    kind = type(value)
    if kind is int or kind is float:
        return float(value)
    if value is None or kind is bool:
        return None
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, Mapping):  # identity reference
        return f"{value.get('displayName', '')} <{value.get('uniqueName', '')}>".lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).lower()


def _typed_value(
    field: FieldDef, value: Constant | Macro, condition: Condition, context: QueryContext
) -> Any:
    if isinstance(value, Constant) and value.value == "":
        if condition.operator not in ("=", "<>"):
            raise WiqlError(f"Expecting constant value. {caused_by(value.text)}")
        return ""  # `= ''` means empty, for fields of every type
    if isinstance(value, Macro):
        if value.name == "@project":
            if context.project is None:
                raise WiqlError(
                    f"The @project macro needs a project in the URL. {caused_by(value.text)}"
                )
            return context.project.lower()
        if value.name in MACROS and field.type == "dateTime":
            return _macro_date(context, value)
        raise WiqlError(f"The macro is not supported for this field. {caused_by(value.text)}")
    if field.type in NUMERIC_TYPES:
        number = _number(value.value)
        if number is None:
            raise WiqlError(
                f"The value is not a valid number for field '{field.name}'. {caused_by(value.text)}"
            )
        return number
    if field.type == "dateTime":
        return _date_literal(value, condition, context)
    return _text(value.value)


def _macro_date(context: QueryContext, value: Macro) -> date | datetime:
    """`@Today - 7`, `@StartOfMonth`, ... (`wiql_dates`); midnight with time precision."""
    day = macro_day(value.name, value.offset, context.today) or context.today
    return datetime.combine(day, time(), UTC) if context.time_precision else day


def _date_literal(value: Constant, condition: Condition, context: QueryContext) -> date | datetime:
    if isinstance(value.value, float):
        raise WiqlError(f"The value is not a valid date. {caused_by(value.text)}")
    moment, has_time = parse_date(value.value)
    if moment is None:
        raise WiqlError(
            f"The string is not recognized as a valid DateTime value. {caused_by(value.text)}"
        )
    if not context.time_precision:
        if has_time:
            raise WiqlError(
                "You cannot supply a time with the date when running a query using date "
                f"precision. {caused_by(condition.text)}"
            )
        return moment.date()
    return moment


def parse_date(text: str) -> tuple[datetime | None, bool]:
    """('2026-11-20T10:00:00Z' | '2026-11-20' | '11/20/2026') -> (UTC datetime, has a time)."""
    raw = text.strip()
    us = _US_DATE.match(raw)
    if us:
        month, day, year, rest = us.groups()
        raw = f"{year}-{int(month):02d}-{int(day):02d}" + (f"T{rest}" if rest else "")
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None, False
    has_time = "T" in raw or " " in raw.strip()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC), has_time


def _date_converter(condition: Condition, context: QueryContext) -> Callable[[Any], Any]:
    if context.time_precision:
        return lambda value: value if isinstance(value, datetime) else None
    return lambda value: value.astimezone(UTC).date() if isinstance(value, datetime) else None


# -- tree paths and text -----------------------------------------------------------------------
def _tree_test(
    field: FieldDef, condition: Condition, context: QueryContext
) -> Callable[[Any], bool]:
    if condition.operator not in ("=", "<>", "in", "under"):
        raise WiqlError(
            "The specified operator cannot be used with area path fields. "
            + caused_by(condition.text)
        )
    paths = [_tree_path(field, value, context) for value in condition.values]
    if condition.operator == "under":
        root = paths[0]
        prefix = root + "\\"
        return lambda value: (
            value is not None and (value.lower() == root or value.lower().startswith(prefix))
        )
    return _comparison(condition.operator, paths, _text)


def _tree_path(field: FieldDef, value: Constant | Macro, context: QueryContext) -> str:
    if isinstance(value, Macro):
        if value.name == "@project" and context.project is not None:
            return context.project.lower()
        raise WiqlError(f"The macro is not supported for this field. {caused_by(value.text)}")
    path = str(value.value).strip().strip("\\").lower()
    if field.reference_name == "System.AreaPath" and path not in context.area_paths:
        raise WiqlError(f"TF51011: The specified area path does not exist. {caused_by(value.text)}")
    return path


def _contains_test(
    field: FieldDef, condition: Condition, context: QueryContext
) -> Callable[[Any], bool]:
    needle = _typed_value(field, condition.values[0], condition, context) or ""
    if field.reference_name == "System.Tags":
        if condition.operator == "words":
            return lambda value: needle in (_text(value) or "").split() if value else False
        return lambda value: needle in tag_set(value)
    if condition.operator == "words":
        words = needle.split()
        return lambda value: (
            value is not None
            and all(re.search(rf"\b{re.escape(word)}\b", _text(value) or "") for word in words)
        )
    return lambda value: value is not None and needle in (_text(value) or "")


def tag_set(value: Any) -> set[str]:
    """`System.Tags` is one string, tags separated by '; '."""
    if not value:
        return set()
    return {tag.strip().lower() for tag in str(value).split(";") if tag.strip()}


# -- sorting and the index hint ----------------------------------------------------------------
def sort_key(field: FieldDef, value: Any) -> tuple[int, Any]:
    """Empty values first (ascending), then values of the field's kind, then anything odd."""
    if value is None or value == "":
        return (0, 0)
    if field.type in NUMERIC_TYPES:
        number = _number(value)
        return (1, number) if number is not None else (2, str(value).lower())
    if field.type == "dateTime":
        return (1, value.timestamp()) if isinstance(value, datetime) else (2, str(value))
    return (1, _text(value))


def _changed_since(where: Expr | None, context: QueryContext) -> datetime | None:
    """A ChangedDate lower bound implied by a top-level `>`/`>=` condition (ANDed), if any."""
    conditions = where.items if isinstance(where, And) else (where,)
    bounds: list[datetime] = []
    for condition in conditions:
        if (
            not isinstance(condition, Condition)
            or condition.negated
            or condition.operator not in (">", ">=")
        ):
            continue
        field = find_field(condition.field.name)
        if field is None or field.reference_name != "System.ChangedDate":
            continue
        value = condition.values[0]
        bound = (
            _macro_date(context, value)
            if isinstance(value, Macro)
            else parse_date(str(value.value))[0]
        )
        if isinstance(bound, datetime):
            bounds.append(
                bound if context.time_precision else datetime.combine(bound.date(), time(), UTC)
            )
        elif isinstance(bound, date):
            bounds.append(datetime.combine(bound, time(), UTC))
    return max(bounds) if bounds else None
