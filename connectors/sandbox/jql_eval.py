"""Compiles a parsed JQL query into a predicate and a sort over the sandbox's stored issues.

Semantics follow Jira where connectors depend on them:
- Values are checked against the site: an unknown project, issue type, status or issue key is a
  400 with Jira's wording ("The value 'X' does not exist for the field 'project'."), unless the
  caller asked for lenient validation (Data Center `validateQuery=warn|false`), where the clause
  matches nothing and the message becomes a warning.
- `!=` and `NOT IN` never match an empty field (`labels != x` skips unlabelled issues);
  `NOT labels = x` does.
- Dates are minute-precision strings ("yyyy/MM/dd HH:mm", "yyyy-MM-dd HH:mm", date only) or
  periods ("-15m", "-2d", "4w 2d"), read in the user's time zone against the server clock;
  `now()` and the calendar functions (`startOfMonth(-1)`, `endOfWeek()`: `jql_dates`).
- Without ORDER BY the order is ascending id; every order ends with id as a tie-breaker so pages
  never shuffle. Text search (`~`) matches every term as a case-insensitive substring, a
  simplification of Jira's word index.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from connectors.sandbox.jira_fields import PRIORITIES, FieldDef, Flavour
from connectors.sandbox.jira_store import IssueStore, StoredIssue, to_millis
from connectors.sandbox.jql import And, Clause, Function, JqlError, Node, Not, Or, Query, SortField
from connectors.sandbox.jql import Value as JqlValue
from connectors.sandbox.jql_dates import calendar_moment
from connectors.sandbox.jql_fields import compile_clause, never, priority_index

if TYPE_CHECKING:
    from _typeshed import SupportsRichComparison

Predicate = Callable[[StoredIssue], bool]
MAX_ORDER_FIELDS = 7
DATE_PATTERN = re.compile(r"^(\d{4})[/-](\d{1,2})[/-](\d{1,2})(?:\s+(\d{1,2}):(\d{2}))?$")
PERIOD_PATTERN = re.compile(r"^([-+]?)\s*((?:\d+\s*[wdhm]\s*)+)$", re.IGNORECASE)
PERIOD_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60}
DATE_FORMATS_TEXT = (
    "Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', "
    "'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'."
)
SORTABLE_KINDS = ("issuekey", "created", "updated", "rank", "priority", "project", "number")


@dataclass
class EvalContext:
    store: IssueStore
    fields: tuple[FieldDef, ...]
    flavour: Flavour
    zone: ZoneInfo
    now: datetime
    strict: bool = True


@dataclass
class CompiledQuery:
    predicate: Predicate | None
    sort_key: Callable[[list[StoredIssue]], list[StoredIssue]]
    bounded: bool
    projects: frozenset[str] | None = None
    updated_from: int | None = None
    warnings: list[str] = field(default_factory=list)

    def run(self, store: IssueStore) -> list[StoredIssue]:
        """The matching visible issues in query order, starting from the narrowest index."""
        by_id = store.by_id
        candidate_ids: list[int] | None = None
        if self.projects is not None:
            per_project = [store.by_project.get(project, {}) for project in self.projects]
            candidate_ids = [issue_id for ids in per_project for issue_id in ids]
        if self.updated_from is not None:
            recent = store.ids_updated_since(self.updated_from)
            if candidate_ids is None or len(recent) < len(candidate_ids):
                candidate_ids = recent
        candidates = by_id.values() if candidate_ids is None else (by_id[i] for i in candidate_ids)
        hidden, predicate = store.hidden, self.predicate
        matches = [
            issue
            for issue in candidates
            if issue.id not in hidden and (predicate is None or predicate(issue))
        ]
        return self.sort_key(matches)


def compile_query(query: Query, context: EvalContext) -> CompiledQuery:
    compiler = QueryCompiler(context)
    predicate = compiler.node(query.where) if query.where is not None else None
    sort_key = compiler.order(query.order_by)
    if compiler.errors:
        raise JqlError(*compiler.errors)
    compiled = CompiledQuery(predicate, sort_key, bounded=query.where is not None)
    compiled.warnings = compiler.warnings
    if query.where is not None:
        compiler.hints(query.where, compiled)
    return compiled


class QueryCompiler:
    def __init__(self, context: EvalContext) -> None:
        self.context = context
        self.store = context.store
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.by_name: dict[str, FieldDef] = {}
        for definition in context.fields:
            for name in (*definition.clause_names, definition.name):
                self.by_name.setdefault(name.lower(), definition)
        self.resolved: dict[int, object] = {}  # id(clause) -> resolved values, for hints

    # -- structure -------------------------------------------------------------------------
    def node(self, node: Node) -> Predicate:
        if isinstance(node, And):
            parts = [self.node(part) for part in node.parts]
            return lambda issue: all(part(issue) for part in parts)
        if isinstance(node, Or):
            parts = [self.node(part) for part in node.parts]
            return lambda issue: any(part(issue) for part in parts)
        if isinstance(node, Not):
            inner = self.node(node.part)
            return lambda issue: not inner(issue)
        return self.clause(node)

    def problem(self, message: str) -> Predicate:
        """A value error: fatal when strict, else a warning and a clause that matches nothing."""
        (self.errors if self.context.strict else self.warnings).append(message)
        return never

    def field(self, name: str) -> FieldDef | None:
        return self.by_name.get(name.lower())

    def clause(self, clause: Clause) -> Predicate:
        definition = self.field(clause.field)
        if definition is None or not definition.searchable:
            self.errors.append(
                f"Field '{clause.field}' does not exist or you do not have permission to view it."
            )
            return never
        return compile_clause(self, definition, clause)

    # -- values ----------------------------------------------------------------------------
    def texts(self, clause: Clause) -> list[tuple[str, int]]:
        """The operand's values as (text, position); functions are expanded by callers."""
        operand = clause.operand
        values = operand if isinstance(operand, tuple) else (operand,)
        return [(value.text, value.position) for value in values if isinstance(value, JqlValue)]

    def functions(self, clause: Clause) -> list[Function]:
        operand = clause.operand
        values = operand if isinstance(operand, tuple) else (operand,)
        return [value for value in values if isinstance(value, Function)]

    def date_millis(self, clause: Clause) -> int | None:
        """The epoch ms a date operand means in the user's zone; None after reporting."""
        operand = clause.operand
        context = self.context
        now = context.now.astimezone(context.zone)
        if isinstance(operand, Function):
            name = operand.name.lower()
            if name == "now" and not operand.arguments:
                return to_millis(now)
            argument = operand.arguments[0].text if len(operand.arguments) == 1 else None
            moment = calendar_moment(name, argument, now)
            if moment is not None and len(operand.arguments) <= 1:
                return to_millis(moment)
            self.errors.append(f"Unable to find JQL function '{operand.name}()'.")
            return None
        if not isinstance(operand, JqlValue):
            self.errors.append(f"The operator '{clause.operator}' is not supported by the "
                               f"'{clause.field}' field.")  # fmt: skip
            return None
        text = operand.text.strip()
        period = _period_seconds(text)
        if period is not None:
            return to_millis(context.now) + period * 1000
        match = DATE_PATTERN.match(text)
        if match is not None:
            year, month, day, hour, minute = match.groups()
            try:
                local = datetime(
                    int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                    tzinfo=context.zone,
                )  # fmt: skip
            except ValueError:
                local = None
            if local is not None:
                return to_millis(local)
        self.errors.append(
            f"Date value '{operand.text}' for field '{clause.field}' is invalid. "
            f"{DATE_FORMATS_TEXT}"
        )
        return None

    # -- order -----------------------------------------------------------------------------
    def order(
        self, sort_fields: tuple[SortField, ...]
    ) -> Callable[[list[StoredIssue]], list[StoredIssue]]:
        if len(sort_fields) > MAX_ORDER_FIELDS:
            self.errors.append(
                f"The ORDER BY clause can contain a maximum of {MAX_ORDER_FIELDS} fields."
            )
        keys: list[tuple[Callable[[StoredIssue], SupportsRichComparison], bool]] = []
        for sort_field in sort_fields:
            definition = self.field(sort_field.field)
            if definition is None:
                self.errors.append(
                    f"Field '{sort_field.field}' does not exist or you do not have permission "
                    "to view it."
                )
                continue
            if definition.kind not in SORTABLE_KINDS:
                self.errors.append(f"Not able to sort using field '{sort_field.field}'.")
                continue
            keys.append((_sort_value(definition), sort_field.descending))

        def ordered(issues: list[StoredIssue]) -> list[StoredIssue]:
            issues.sort(key=_by_id)
            for key, descending in reversed(keys):
                issues.sort(key=key, reverse=descending)  # stable: earlier keys win
            return issues

        return ordered

    # -- prefilter hints -------------------------------------------------------------------
    def hints(self, where: Node, compiled: CompiledQuery) -> None:
        """Top-level `project in (...)` and `updated >= X` narrow the candidates by index."""
        conjuncts = where.parts if isinstance(where, And) else (where,)
        for part in conjuncts:
            if not isinstance(part, Clause):
                continue
            definition = self.field(part.field)
            resolved = self.resolved.get(id(part))
            if definition is None or resolved is None:
                continue
            if definition.kind == "project" and part.operator in ("=", "in"):
                projects = frozenset(resolved)  # type: ignore[call-overload]
                current = compiled.projects
                compiled.projects = projects if current is None else current & projects
            elif definition.kind == "updated" and part.operator in (">=", ">"):
                assert isinstance(resolved, int)
                compiled.updated_from = max(compiled.updated_from or resolved, resolved)


def _by_id(issue: StoredIssue) -> int:
    return issue.id


def _sort_value(definition: FieldDef) -> Callable[[StoredIssue], SupportsRichComparison]:
    kind = definition.kind
    if kind == "issuekey":
        return lambda issue: (issue.project, issue.number)
    if kind in ("created", "updated", "rank", "project"):
        attribute = kind
        return lambda issue: getattr(issue, attribute)
    if kind == "priority":
        return lambda issue: len(PRIORITIES) - priority_index(issue.priority)
    slot = definition.slot or ""

    def number(issue: StoredIssue) -> tuple[bool, float]:
        value = issue.values.get(slot)
        return (True, 0.0) if not isinstance(value, float | int) else (False, float(value))

    return number


def _period_seconds(text: str) -> int | None:
    match = PERIOD_PATTERN.match(text.strip())
    if match is None:
        return None
    sign = -1 if match.group(1) == "-" else 1
    total = sum(
        int(amount) * PERIOD_UNITS[unit.lower()]
        for amount, unit in re.findall(r"(\d+)\s*([wdhmWDHM])", match.group(2))
    )
    return sign * total
