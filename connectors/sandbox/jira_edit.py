"""`PUT /rest/api/{2,3}/issue/{key}` (editIssue): `fields` sets values, `update` applies verbs.

Validation happens before anything is applied, so a 400 leaves the issue untouched, and the
answer carries one message per field in `errors` as Jira does:
- an unknown or read-only field (Rank, status, created…): "Field 'x' cannot be set. It is not on
  the appropriate screen, or unknown.";
- a wrong type: "Operation value must be a number" / "… a string"; labels not a list: "data
  was not an array"; v3 `description` not ADF: "Operation value must be an Atlassian Document
  (see the Atlassian Document Format)";
- a field in both `fields` and `update` (the spec forbids it).
Every requested field becomes a `JiraWrite` record (even an unchanged value, so duplicate
writes are visible); `updated` moves only when a value really changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.sandbox.jira_fields import PRIORITIES, FieldDef, Flavour
from connectors.sandbox.jira_render import adf_text
from connectors.sandbox.jira_store import IssueStore, StoredIssue

NOT_SETTABLE = "Field '{}' cannot be set. It is not on the appropriate screen, or unknown."
MAX_TEXT = 255


@dataclass(frozen=True, slots=True)
class JiraWrite:
    """One field write applied through the API: what a duplicate-write check looks at.

    `field` is the field id, `name` its display name; `old`/`new` are stored values (numbers,
    strings, label tuples, issue keys; the Rank field holds rank strings). `notified` says
    whether watchers were notified (notifyUsers=false is honoured for admins only).
    """

    key: str
    field: str
    name: str
    old: Any
    new: Any
    at: datetime
    notified: bool


class EditError(Exception):
    def __init__(self, errors: dict[str, str], messages: list[str] | None = None) -> None:
        super().__init__("; ".join([*(messages or []), *errors.values()]))
        self.errors = errors
        self.messages = messages or []

    def body(self) -> dict[str, Any]:
        return {"errorMessages": self.messages, "errors": self.errors}


class _FieldError(Exception):
    pass


@dataclass
class EditContext:
    store: IssueStore
    fields: tuple[FieldDef, ...]
    flavour: Flavour
    api_version: str
    off_screen: frozenset[str] = frozenset()
    """Ids of fields not on the issue's edit screen (see `jira_permissions`)."""

    def definition(self, field_id: str) -> FieldDef | None:
        return next((d for d in self.fields if d.id == field_id), None)


def plan_edit(context: EditContext, issue: StoredIssue, body: Any) -> dict[FieldDef, Any]:
    """Validate an `IssueUpdateDetails` body; returns field -> new stored value."""
    if not isinstance(body, dict):
        raise EditError({}, ["Can not deserialize the request body: expected a JSON object."])
    fields, update = body.get("fields") or {}, body.get("update") or {}
    if not isinstance(fields, dict) or not isinstance(update, dict):
        raise EditError({}, ["'fields' and 'update' must be JSON objects."])
    errors: dict[str, str] = {}
    changes: dict[FieldDef, Any] = {}
    for field_id in fields.keys() & update.keys():
        errors[field_id] = f"Field '{field_id}' cannot be set in both 'fields' and 'update'."
    requests = [(fid, [{"set": value}]) for fid, value in fields.items()]
    requests += list(update.items())
    for field_id, operations in requests:
        if field_id in errors:
            continue
        definition = context.definition(field_id)
        if (
            definition is None
            or not definition.editable
            or not on_screen(context, issue, definition)
        ):
            errors[field_id] = NOT_SETTABLE.format(field_id)
            continue
        try:
            changes[definition] = _apply_operations(context, issue, definition, operations)
        except _FieldError as error:
            errors[field_id] = str(error)
    if errors:
        raise EditError(errors)
    return changes


def on_screen(context: EditContext, issue: StoredIssue, definition: FieldDef) -> bool:
    """Whether editIssue may set the field on this issue. Data Center sets `parent` only on
    sub-tasks; the levels above use Epic/Parent Link."""
    if not definition.editable or definition.id in context.off_screen:
        return False
    if definition.kind == "parent" and context.flavour == "datacenter":
        return context.store.is_subtask(issue)
    return True


def current_value(context: EditContext, issue: StoredIssue, definition: FieldDef) -> Any:
    kind = definition.kind
    if kind in ("number", "text"):
        return issue.values.get(definition.slot or "")
    if kind in ("epic_link", "parent_link"):
        parent = context.store.by_key.get(issue.parent or "")
        if parent is None or context.store.parent_field(issue, parent) != kind:
            return None
        return parent.key
    attribute = {"option": "team", "labels": "labels", "components": "components"}.get(kind, kind)
    return getattr(issue, attribute)


def _apply_operations(
    context: EditContext, issue: StoredIssue, definition: FieldDef, operations: Any
) -> Any:
    if not isinstance(operations, list):
        raise _FieldError(f"Operations for field '{definition.id}' must be a list.")
    value = current_value(context, issue, definition)
    multi = definition.kind in ("labels", "components")
    for operation in operations:
        if not isinstance(operation, dict) or len(operation) != 1:
            raise _FieldError("Each operation must have exactly one verb.")
        ((verb, argument),) = operation.items()
        if verb == "set":
            value = _convert(context, issue, definition, argument)
        elif verb in ("add", "remove") and multi:
            (item,) = _convert(context, issue, definition, [argument])
            items = tuple(existing for existing in value if existing != item)
            value = (*items, item) if verb == "add" else items
        else:
            raise _FieldError(f"Field '{definition.id}' does not support operation '{verb}'.")
    return value


def _convert(context: EditContext, issue: StoredIssue, definition: FieldDef, value: Any) -> Any:
    converter = _CONVERTERS.get(definition.kind)
    if converter is None:
        raise _FieldError(NOT_SETTABLE.format(definition.id))
    return converter(context, issue, value)


def _number(context: EditContext, issue: StoredIssue, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _FieldError("Operation value must be a number")
    return float(value)


def _text(context: EditContext, issue: StoredIssue, value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _FieldError("Operation value must be a string")
    if len(value) > MAX_TEXT:
        raise _FieldError(
            f"The entered text is too long. It exceeds the allowed limit of {MAX_TEXT} characters."
        )
    return value


def _summary(context: EditContext, issue: StoredIssue, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _FieldError("You must specify a summary of the issue.")
    if "\n" in value or "\r" in value:
        raise _FieldError("The summary is invalid because it contains newline characters.")
    return value


def _description(context: EditContext, issue: StoredIssue, value: Any) -> str | None:
    if value is None:
        return None
    if context.api_version == "3":
        if not isinstance(value, dict) or value.get("type") != "doc":
            raise _FieldError(
                "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
            )
        return adf_text(value)
    if not isinstance(value, str):
        raise _FieldError("Operation value must be a string")
    return value


def _labels(context: EditContext, issue: StoredIssue, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _FieldError("data was not an array")
    labels: list[str] = []
    for label in value:
        if not isinstance(label, str) or not label:
            raise _FieldError("Operation value must be a string")
        if any(char.isspace() for char in label):
            raise _FieldError(f"The label '{label}' contains spaces which is invalid.")
        if label not in labels:
            labels.append(label)
    return tuple(labels)


def _components(context: EditContext, issue: StoredIssue, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _FieldError("data was not an array")
    known = context.store.component_ids
    by_id = {str(component_id): name for name, component_id in known.items()}
    names: list[str] = []
    for entry in value:
        name = entry.get("name") if isinstance(entry, dict) else None
        if name is None and isinstance(entry, dict):
            name = by_id.get(str(entry.get("id")))
        if name not in known:
            raise _FieldError(f"Component {entry!r} is not valid.")
        names.append(str(name))
    return tuple(names)


def _priority(context: EditContext, issue: StoredIssue, value: Any) -> str:
    if isinstance(value, dict):
        if value.get("name") in PRIORITIES:
            return str(value["name"])
        if str(value.get("id")) in {str(n + 1) for n in range(len(PRIORITIES))}:
            return PRIORITIES[int(value["id"]) - 1]
    raise _FieldError("The priority selected is invalid.")


def _option(context: EditContext, issue: StoredIssue, value: Any) -> str | None:
    if value is None:
        return None
    options = context.store.option_ids
    if isinstance(value, dict):
        if value.get("value") in options:
            return str(value["value"])
        by_id = {str(option_id): name for name, option_id in options.items()}
        if str(value.get("id")) in by_id:
            return by_id[str(value.get("id"))]
        raise _FieldError(f"Option value '{value.get('value', value.get('id'))}' is not valid")
    raise _FieldError('Operation value must be an object like {"value": "..."}')


def _issue_reference(context: EditContext, issue: StoredIssue, value: Any) -> str | None:
    """`parent` takes {"key"} / {"id"} (or {"none": true} to clear); Epic/Parent Link a key."""
    if value is None or (isinstance(value, dict) and value.get("none") is True):
        return None
    reference = value
    if isinstance(value, dict):
        reference = value.get("key") or value.get("id")
    if not isinstance(reference, str | int):
        raise _FieldError("Operation value must be an issue key or id")
    target = context.store.find(str(reference))
    if target is None:
        raise _FieldError(f"Could not find issue by id or key '{reference}'.")
    if target.id == issue.id:
        raise _FieldError("An issue can't be its own parent.")
    return target.key


def _epic_reference(context: EditContext, issue: StoredIssue, value: Any) -> str | None:
    key = _issue_reference(context, issue, value)
    target = context.store.by_key.get(key or "")
    if target is not None and target.type != "Epic":
        raise _FieldError(f"Issue '{key}' is not an epic.")
    return key


_CONVERTERS: dict[str, Callable[[EditContext, StoredIssue, Any], Any]] = {
    "summary": _summary,
    "description": _description,
    "number": _number,
    "text": _text,
    "labels": _labels,
    "components": _components,
    "priority": _priority,
    "option": _option,
    "parent": _issue_reference,
    "epic_link": _epic_reference,
    "parent_link": _issue_reference,
}


def apply_edit(
    context: EditContext, issue: StoredIssue, changes: dict[FieldDef, Any], notified: bool
) -> list[JiraWrite]:
    """Store validated changes; one `JiraWrite` per field; bump `updated` if anything changed."""
    store = context.store
    at = store.clock()
    writes: list[JiraWrite] = []
    changed = False
    for definition, new in changes.items():
        old = current_value(context, issue, definition)
        writes.append(JiraWrite(issue.key, definition.id, definition.name, old, new, at, notified))
        if old == new:
            continue
        changed = True
        set_value(issue, definition.kind, definition.slot, new)
    if changed:
        store.bump(issue)
    return writes


def set_value(issue: StoredIssue, kind: str, slot: str | None, value: Any) -> None:
    if kind in ("number", "text"):
        if value is None:
            issue.values.pop(slot or "", None)
        else:
            issue.values[slot or ""] = value
    elif kind in ("parent", "epic_link", "parent_link"):
        issue.parent = value
    elif kind == "option":
        issue.team = value
    elif kind in ("labels", "components"):
        setattr(issue, kind, tuple(value))
    else:
        setattr(issue, kind, value)
