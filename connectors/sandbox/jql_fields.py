"""Per-field JQL clause semantics: which operators a field takes, how its values are resolved
against the site (unknown values are errors, as in Jira), and the predicate it compiles to."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TYPE_CHECKING

from connectors.sandbox.jira_fields import PRIORITIES, STATUS_CATEGORIES, FieldDef
from connectors.sandbox.jira_store import KEY_PATTERN, StoredIssue
from connectors.sandbox.jql import Clause, Empty, Function

if TYPE_CHECKING:
    from connectors.sandbox.jql_eval import QueryCompiler

Predicate = Callable[[StoredIssue], bool]
Resolver = Callable[[str], set[Hashable] | None]
EQUALITY = ("=", "!=", "in", "not in")
EMPTINESS = ("is", "is not")
ORDERING = ("<", "<=", ">", ">=")


def never(issue: StoredIssue) -> bool:
    return False


def status_category_name(text: str) -> str | None:
    """The category name for a name, key ("indeterminate") or id ("4")."""
    lowered = text.lower()
    for name, (category_id, key, _) in STATUS_CATEGORIES.items():
        if lowered in (name.lower(), key, str(category_id)):
            return name
    return None


def priority_index(name: str) -> int:
    return PRIORITIES.index(name) if name in PRIORITIES else len(PRIORITIES)


def unsupported(compiler: QueryCompiler, clause: Clause) -> Predicate:
    compiler.errors.append(
        f"The operator '{clause.operator.upper()}' is not supported by the '{clause.field}' field."
    )
    return never


def compile_clause(compiler: QueryCompiler, definition: FieldDef, clause: Clause) -> Predicate:
    if isinstance(clause.operand, Empty) and clause.operator in ("=", "!="):
        operator = "is" if clause.operator == "=" else "is not"
        clause = Clause(clause.field, operator, clause.operand, clause.position)
    kind = definition.kind
    if kind in ("created", "updated"):
        return _date_clause(compiler, clause, kind)
    if kind in ("number",):
        return _number_clause(compiler, definition, clause)
    if kind in ("summary", "description", "text"):
        return _text_clause(compiler, definition, clause)
    if kind == "issuekey" and clause.operator in ORDERING:
        return _key_order_clause(compiler, clause)
    if kind == "priority" and clause.operator in ORDERING:
        return _priority_order_clause(compiler, clause)
    spec = _EQUALITY_FIELDS.get(kind)
    if spec is None:
        return unsupported(compiler, clause)
    single, multi, resolver = spec(compiler, clause)
    return _equality_clause(compiler, clause, single, multi, resolver)


Spec = tuple[
    Callable[[StoredIssue], Hashable] | None,
    Callable[[StoredIssue], Iterable[Hashable]] | None,
    Resolver,
]


def _equality_clause(
    compiler: QueryCompiler,
    clause: Clause,
    single: Callable[[StoredIssue], Hashable] | None,
    multi: Callable[[StoredIssue], Iterable[Hashable]] | None,
    resolve: Resolver,
) -> Predicate:
    operator = clause.operator
    if operator in EMPTINESS:
        if single is not None:
            value_of = single
            empty: Predicate = lambda issue: value_of(issue) is None  # noqa: E731
        else:
            values_of = multi
            assert values_of is not None
            empty = lambda issue: not any(True for _ in values_of(issue))  # noqa: E731
        return empty if operator == "is" else (lambda issue: not empty(issue))
    if operator not in EQUALITY:
        return unsupported(compiler, clause)
    wanted: set[Hashable] = set()
    for text, _ in compiler.texts(clause):
        resolved = resolve(text)
        if resolved is None:
            if compiler.context.strict or operator not in ("=", "in"):
                return compiler.problem(_unknown_value(clause, text))
            # Unvalidated, an unknown value of a list is dropped and the others still match
            # (`key in (PAY-1, PAY-404)` finds PAY-1, with a warning about PAY-404).
            compiler.warnings.append(_unknown_value(clause, text))
            continue
        wanted |= resolved
    for function in compiler.functions(clause):
        expanded = _function_values(compiler, clause, function)
        if expanded is None:
            return never
        wanted |= expanded
    if operator in ("=", "in"):
        compiler.resolved[id(clause)] = wanted
    positive = operator in ("=", "in")
    if single is not None:
        get = single
        if positive:
            return lambda issue: get(issue) in wanted
        return lambda issue: (value := get(issue)) is not None and value not in wanted
    get_all = multi
    assert get_all is not None
    if positive:
        return lambda issue: any(value in wanted for value in get_all(issue))
    return lambda issue: (
        bool(values := list(get_all(issue))) and not any(value in wanted for value in values)
    )


def _unknown_value(clause: Clause, text: str) -> str:
    field = clause.field
    if field.lower() in ("key", "issuekey", "id", "issue", "parent", "epic link", "parent link"):
        if not KEY_PATTERN.match(text.upper()) and not text.isdigit():
            return f"The issue key '{text}' for field '{field}' is invalid."
        return f"An issue with key '{text}' does not exist for field '{field}'."
    return f"The value '{text}' does not exist for the field '{field}'."


def _function_values(
    compiler: QueryCompiler, clause: Clause, function: Function
) -> set[Hashable] | None:
    store, name = compiler.store, function.name.lower()
    if name in ("standardissuetypes", "subtaskissuetypes") and clause.field.lower() in (
        "issuetype",
        "type",
    ):
        want_subtasks = name == "subtaskissuetypes"
        return {t for t, (_, _, sub) in store.issue_types.items() if sub == want_subtasks}
    if name == "linkedissues" and function.arguments:
        issue = store.find(function.arguments[0].text)
        if issue is None:
            compiler.errors.append(
                f"Issue '{function.arguments[0].text}' could not be found in function "
                "'linkedIssues'."
            )
            return None
        wanted_description = (
            function.arguments[1].text.lower() if len(function.arguments) > 1 else None
        )
        linked: set[Hashable] = set()
        for link in store.links_for(issue):
            inward, outward = store.link_types[link.type][1:]
            # From `issue`'s side: an outward link reads with the outward description.
            if link.outward == issue.id:
                other, description = link.inward, outward
            else:
                other, description = link.outward, inward
            if wanted_description in (None, description.lower()):
                linked.add(other)
        return linked
    compiler.errors.append(f"Unable to find JQL function '{function.name}()'.")
    return None


def _project_spec(compiler: QueryCompiler, clause: Clause) -> Spec:
    projects = compiler.store.projects

    def resolve(text: str) -> set[Hashable] | None:
        lowered = text.lower()
        for info in projects.values():
            if lowered in (info.key.lower(), info.name.lower(), str(info.id)):
                return {info.key}
        return None

    return (lambda issue: issue.project), None, resolve


def _named_spec(names: Callable[[], dict[str, str]], attribute: str) -> Callable[..., Spec]:
    """A single-valued field matched by name or id, case-insensitively."""

    def spec(compiler: QueryCompiler, clause: Clause) -> Spec:
        table = names()
        lowered = {name.lower(): name for name in table}
        by_id = {identifier: name for name, identifier in table.items()}

        def resolve(text: str) -> set[Hashable] | None:
            name = lowered.get(text.lower()) or by_id.get(text)
            return {name} if name is not None else None

        return (lambda issue: getattr(issue, attribute)), None, resolve

    return spec


def _issuetype_spec(compiler: QueryCompiler, clause: Clause) -> Spec:
    types = compiler.store.issue_types
    return _named_spec(lambda: {name: str(v[0]) for name, v in types.items()}, "type")(
        compiler, clause
    )


def _status_spec(compiler: QueryCompiler, clause: Clause) -> Spec:
    statuses = compiler.store.statuses
    return _named_spec(lambda: {name: v[0] for name, v in statuses.items()}, "status")(
        compiler, clause
    )


def _priority_spec(compiler: QueryCompiler, clause: Clause) -> Spec:
    table = {name: str(n + 1) for n, name in enumerate(PRIORITIES)}
    return _named_spec(lambda: table, "priority")(compiler, clause)


def _category_spec(compiler: QueryCompiler, clause: Clause) -> Spec:
    def resolve(text: str) -> set[Hashable] | None:
        name = status_category_name(text)
        return {name} if name else None

    return (lambda issue: issue.status_category), None, resolve


def _labels_spec(compiler: QueryCompiler, clause: Clause) -> Spec:
    # Label matching is case-insensitive here (UNVERIFIED against Jira's index; it lets a
    # `labels = kr-7` scope find `KR-7` as users expect).
    return None, (lambda issue: (label.lower() for label in issue.labels)), (lambda t: {t.lower()})


def _known_lower(values: Iterable[str | None]) -> set[str]:
    return {value.lower() for value in values if value}


def _components_spec(compiler: QueryCompiler, clause: Clause) -> Spec:
    known = _known_lower(c for issue in compiler.store.by_id.values() for c in issue.components)
    return (
        None,
        lambda issue: (component.lower() for component in issue.components),
        lambda text: {text.lower()} if text.lower() in known else None,
    )


def _team_spec(compiler: QueryCompiler, clause: Clause) -> Spec:
    known = _known_lower(issue.team for issue in compiler.store.by_id.values())
    return (
        lambda issue: issue.team.lower() if issue.team else None,
        None,
        lambda text: {text.lower()} if text.lower() in known else None,
    )


def _issue_resolver(compiler: QueryCompiler) -> Resolver:
    def resolve(text: str) -> set[Hashable] | None:
        issue = compiler.store.find(text)
        return {issue.id} if issue is not None else None

    return resolve


def _issuekey_spec(compiler: QueryCompiler, clause: Clause) -> Spec:
    return (lambda issue: issue.id), None, _issue_resolver(compiler)


def _hierarchy_spec(level: str) -> Callable[..., Spec]:
    """`parent`, "Epic Link" and "Parent Link": all read `StoredIssue.parent`, but on Data
    Center each covers one level (sub-task parent, epic of a story, parent above an epic)."""

    def spec(compiler: QueryCompiler, clause: Clause) -> Spec:
        store = compiler.store
        datacenter = compiler.context.flavour == "datacenter"

        def parent_id(issue: StoredIssue) -> int | None:
            if issue.parent is None:
                return None
            parent = store.by_key.get(issue.parent)
            if parent is None:
                return None
            if datacenter and store.parent_field(issue, parent) != level:
                return None
            return parent.id

        return parent_id, None, _issue_resolver(compiler)

    return spec


_EQUALITY_FIELDS: dict[str, Callable[[QueryCompiler, Clause], Spec]] = {
    "project": _project_spec,
    "issuetype": _issuetype_spec,
    "status": _status_spec,
    "statusCategory": _category_spec,
    "priority": _priority_spec,
    "labels": _labels_spec,
    "components": _components_spec,
    "option": _team_spec,
    "issuekey": _issuekey_spec,
    "parent": _hierarchy_spec("parent"),
    "epic_link": _hierarchy_spec("epic_link"),
    "parent_link": _hierarchy_spec("parent_link"),
}


def _date_clause(compiler: QueryCompiler, clause: Clause, attribute: str) -> Predicate:
    operator = clause.operator
    if operator in EMPTINESS:
        return never if operator == "is" else (lambda issue: True)
    if operator not in ("=", "!=", *ORDERING):
        return unsupported(compiler, clause)
    millis = compiler.date_millis(clause)
    if millis is None:
        return never
    if operator in (">=", ">"):
        compiler.resolved[id(clause)] = millis
    get = (lambda issue: issue.updated) if attribute == "updated" else (lambda i: i.created)
    return _compare(operator, get, millis)


def _compare(operator: str, get: Callable[[StoredIssue], float], bound: float) -> Predicate:
    if operator == "=":
        return lambda issue: get(issue) == bound
    if operator == "!=":
        return lambda issue: get(issue) != bound
    if operator == "<":
        return lambda issue: get(issue) < bound
    if operator == "<=":
        return lambda issue: get(issue) <= bound
    if operator == ">":
        return lambda issue: get(issue) > bound
    return lambda issue: get(issue) >= bound


def _number_clause(compiler: QueryCompiler, definition: FieldDef, clause: Clause) -> Predicate:
    slot = definition.slot or ""
    operator = clause.operator
    if operator in EMPTINESS:
        empty: Predicate = lambda issue: not isinstance(issue.values.get(slot), float | int)  # noqa: E731
        return empty if operator == "is" else (lambda issue: not empty(issue))
    numbers: list[float] = []
    for text, _ in compiler.texts(clause):
        try:
            numbers.append(float(text))
        except ValueError:
            return compiler.problem(f"The value '{text}' is not a valid number for the field "
                                    f"'{clause.field}'.")  # fmt: skip

    def value(issue: StoredIssue) -> float | None:
        raw = issue.values.get(slot)
        return float(raw) if isinstance(raw, float | int) else None

    if operator in EQUALITY:
        wanted = set(numbers)
        if operator in ("in", "="):
            return lambda issue: value(issue) in wanted
        return lambda issue: (v := value(issue)) is not None and v not in wanted
    if operator in ORDERING and len(numbers) == 1:
        bound = numbers[0]
        compare = _compare(operator, lambda issue: value(issue), bound)  # type: ignore[arg-type, return-value]
        return lambda issue: value(issue) is not None and compare(issue)
    return unsupported(compiler, clause)


def _text_clause(compiler: QueryCompiler, definition: FieldDef, clause: Clause) -> Predicate:
    operator = clause.operator
    if definition.kind == "summary":
        get: Callable[[StoredIssue], str | None] = lambda issue: issue.summary  # noqa: E731
    elif definition.kind == "description":
        get = lambda issue: issue.description  # noqa: E731
    else:
        slot = definition.slot or ""
        get = lambda issue: (  # noqa: E731
            str(issue.values[slot]) if issue.values.get(slot) is not None else None
        )
    if operator in EMPTINESS:
        empty: Predicate = lambda issue: not get(issue)  # noqa: E731
        return empty if operator == "is" else (lambda issue: not empty(issue))
    if operator not in ("~", "!~"):
        return unsupported(compiler, clause)
    terms = [
        term.lower().strip("*?") for text, _ in compiler.texts(clause) for term in text.split()
    ]

    def contains(issue: StoredIssue) -> bool:
        text = (get(issue) or "").lower()
        return all(term in text for term in terms)

    if operator == "~":
        return contains
    return lambda issue: get(issue) is not None and not contains(issue)


def _key_order_clause(compiler: QueryCompiler, clause: Clause) -> Predicate:
    texts = compiler.texts(clause)
    if len(texts) != 1:
        return unsupported(compiler, clause)
    text = texts[0][0]
    target = compiler.store.find(text)
    if target is None:
        return compiler.problem(_unknown_value(clause, text))
    if text.isdigit():
        return _compare(clause.operator, lambda issue: issue.id, target.id)
    project = target.project
    by_number = _compare(clause.operator, lambda issue: issue.number, target.number)
    return lambda issue: issue.project == project and by_number(issue)


def _priority_order_clause(compiler: QueryCompiler, clause: Clause) -> Predicate:
    texts = compiler.texts(clause)
    names = {name.lower(): name for name in PRIORITIES}
    if len(texts) != 1 or texts[0][0].lower() not in names:
        return compiler.problem(_unknown_value(clause, texts[0][0] if texts else ""))
    # A higher priority is a smaller index, so `priority > Medium` means High or Highest.
    bound = -priority_index(names[texts[0][0].lower()])
    return _compare(clause.operator, lambda issue: -priority_index(issue.priority), bound)
