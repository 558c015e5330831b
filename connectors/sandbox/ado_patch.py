"""JSON Patch on one work item, the way `PATCH _apis/wit/workitems/{id}` applies it.

The document is applied to a copy and only committed when every operation succeeded, so a
failed `test` leaves the item untouched (the service evaluates the document atomically). Paths:
`/rev` and `/fields/<ref>` for `test`; `/fields/<ref>` for `add`/`replace`/`remove`;
`/relations/-` to add a link and `/relations/<index>` to remove one. `System.Tags` is normalized
to `Tag1; Tag2` (deduplicated ignoring case, sorted). Rules the sandbox enforces unless
`bypassRules=true`: read-only fields (TF401326), allowed states of the type and a required
title (TF401320); a tree path must exist (TF401347) and an item has at most one parent, with or
without rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.sandbox import ado_protocol as protocol
from connectors.sandbox.ado_fields import CHILD, PARENT, FieldDef, find_field, find_relation_type
from connectors.sandbox.ado_render import Relation
from connectors.sandbox.server import HttpError
from connectors.sandbox.wiql_eval import parse_date

OPERATIONS = frozenset({"add", "remove", "replace", "move", "copy", "test"})
BYPASSABLE_READ_ONLY = frozenset(
    {"System.CreatedDate", "System.ChangedDate", "System.CreatedBy", "System.ChangedBy"}
)
_WORK_ITEM_URL = re.compile(r"/_apis/wit/workitems/(\d+)/?$", re.IGNORECASE)


@dataclass
class PatchContext:
    """What a patch may look at outside its own item."""

    states: Sequence[str]
    area_paths: frozenset[str]
    bypass_rules: bool
    exists: Callable[[int], bool]
    parent_of: Callable[[int], int | None]


@dataclass
class PatchResult:
    fields: dict[str, Any]
    relations: list[Relation]
    field_changes: list[tuple[str, Any, Any]] = field(default_factory=list)
    added_links: list[Relation] = field(default_factory=list)
    removed_links: list[Relation] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.field_changes or self.added_links or self.removed_links)


def apply_patch(
    work_item_id: int,
    fields: Mapping[str, Any],
    relations: Sequence[Relation],
    document: Any,
    context: PatchContext,
) -> PatchResult:
    """The item after `document`, or HttpError (412 for a failed test, 400 for the rest)."""
    if not isinstance(document, list) or not document:
        raise protocol.invalid_patch(
            "You must pass a valid patch document in the body of the request."
        )
    result = PatchResult(dict(fields), list(relations))
    for operation in document:
        op, path, value = _parts(operation)
        if op == "test":
            _test(result, path, value)
        elif path.lower().startswith("/fields/"):
            _set_field(result, op, path[len("/fields/") :], value, context)
        elif path.lower().startswith("/relations/"):
            _change_relations(work_item_id, result, op, path[len("/relations/") :], value, context)
        elif path.lower() == "/rev":
            raise protocol.invalid_field_status("ReadOnly", "System.Rev")
        else:
            raise protocol.invalid_patch(f"The path '{path}' is not valid for a work item update.")
    return result


def _parts(operation: Any) -> tuple[str, str, Any]:
    if not isinstance(operation, dict) or not isinstance(operation.get("path"), str):
        raise protocol.invalid_patch(
            "You must pass a valid patch document in the body of the request."
        )
    op = str(operation.get("op", "")).lower()
    if op not in OPERATIONS:
        raise protocol.invalid_patch(
            f"The operation '{operation.get('op')}' is not a valid JSON Patch operation."
        )
    if op in ("move", "copy"):
        raise protocol.invalid_patch(f"The operation '{op}' is not supported for work items.")
    return op, operation["path"], operation.get("value")


def _test(result: PatchResult, path: str, expected: Any) -> None:
    if path.lower() == "/rev":
        actual = result.fields.get("System.Rev")
    elif path.lower().startswith("/fields/"):
        definition = _field_or_error(path[len("/fields/") :])
        actual = result.fields.get(definition.reference_name)
    else:
        raise protocol.invalid_patch(f"The path '{path}' can not be tested.")
    if not _same(actual, expected):
        raise protocol.test_failed(path, actual, expected)


def _same(actual: Any, expected: Any) -> bool:
    """Values compare after conversion to the stored type, as the service's test operation does."""
    if actual is None or expected is None:
        return actual is expected
    if isinstance(actual, bool) or isinstance(expected, bool):
        return actual == expected
    if isinstance(actual, int | float):
        try:
            return float(actual) == float(expected)
        except (TypeError, ValueError):
            return False
    if isinstance(actual, datetime):
        return isinstance(expected, str) and parse_date(expected)[0] == actual
    return str(actual) == str(expected)


def _field_or_error(name: str) -> FieldDef:
    definition = find_field(name)
    if definition is None:
        raise protocol.field_not_found(name)
    return definition


def _set_field(result: PatchResult, op: str, name: str, value: Any, context: PatchContext) -> None:
    definition = _field_or_error(name)
    reference = definition.reference_name
    if definition.read_only and not (context.bypass_rules and reference in BYPASSABLE_READ_ONLY):
        raise protocol.invalid_field_status("ReadOnly", reference)
    new = None if op == "remove" else coerce(definition, value)
    _check_rules(definition, new, context)
    old = result.fields.get(reference)
    if new is None:
        result.fields.pop(reference, None)
    else:
        result.fields[reference] = new
    if old != new:
        result.field_changes.append((reference, old, new))


def coerce(definition: FieldDef, value: Any) -> Any:
    """A JSON value converted to the field's type; TF401326 'InvalidType' when it can't be."""
    if value is None or (
        value == "" and definition.type not in ("string", "plainText", "html", "history")
    ):
        return None
    converted = _convert(definition, value)
    if converted is _INVALID:
        raise protocol.invalid_field_status("InvalidType", definition.reference_name)
    return converted


_INVALID = object()


def _convert(definition: FieldDef, value: Any) -> Any:
    kind = definition.type
    if (isinstance(value, dict | list) and kind != "identity") or isinstance(value, bool):
        return _INVALID
    if kind in ("integer", "double"):
        try:
            number = float(value)
        except (TypeError, ValueError):
            return _INVALID
        if kind == "double":
            return number
        return int(number) if number.is_integer() else _INVALID
    if kind == "dateTime":
        moment = parse_date(str(value))[0]
        return moment if moment is not None else _INVALID
    if definition.reference_name == "System.Tags":
        return normalize_tags(str(value))
    if kind == "treePath":
        return str(value).strip().strip("\\")
    if kind == "identity":
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def normalize_tags(text: str) -> str | None:
    """'b;A ; a' -> 'A; b': tags are unique ignoring case and listed alphabetically."""
    seen: dict[str, str] = {}
    for tag in text.split(";"):
        if tag.strip():
            seen.setdefault(tag.strip().lower(), tag.strip())
    return "; ".join(sorted(seen.values(), key=str.lower)) or None


def _check_rules(definition: FieldDef, value: Any, context: PatchContext) -> None:
    reference = definition.reference_name
    if reference == "System.AreaPath" and (
        value is None or str(value).lower() not in context.area_paths
    ):
        raise protocol.bad_argument(
            f"TF401347: Invalid tree name given for work item, field '{reference}'."
        )
    if context.bypass_rules:
        return
    if reference == "System.State" and (value is None or value not in context.states):
        raise protocol.rule_error(definition.name, "LimitedToValues")
    if reference == "System.Title" and not value:
        raise protocol.rule_error(definition.name, "Required")


# -- relations ---------------------------------------------------------------------------------
def _change_relations(
    work_item_id: int, result: PatchResult, op: str, where: str, value: Any, context: PatchContext
) -> None:
    if op == "add" and where == "-":
        relation = _new_relation(work_item_id, result, value, context)
        result.relations.append(relation)
        result.added_links.append(relation)
        return
    if op == "remove" and where.isdigit():
        index = int(where)
        if index >= len(result.relations):
            raise protocol.invalid_patch(f"The relation index {index} is out of range.")
        result.removed_links.append(result.relations.pop(index))
        return
    raise protocol.invalid_patch(
        f"The path '/relations/{where}' is not valid for operation '{op}'."
    )


def _new_relation(
    work_item_id: int, result: PatchResult, value: Any, context: PatchContext
) -> Relation:
    if not isinstance(value, dict) or not value.get("rel") or not value.get("url"):
        raise protocol.invalid_patch("A relation needs 'rel' and 'url'.")
    relation_type = find_relation_type(str(value["rel"]))
    if relation_type is None:
        raise protocol.bad_argument(f"TF201063: The link type '{value['rel']}' does not exist.")
    comment = (value.get("attributes") or {}).get("comment")
    if relation_type.opposite is None:
        return Relation(relation_type.reference_name, str(value["url"]), comment)
    target = _target_id(str(value["url"]))
    if target == work_item_id:
        raise protocol.bad_argument("TF201040: A work item cannot be linked to itself.")
    if not context.exists(target):
        raise protocol.work_item_not_found(target)
    relation = Relation(relation_type.reference_name, target, comment)
    if any(
        existing.rel == relation.rel and existing.target == target for existing in result.relations
    ):
        raise protocol.bad_argument(f"TF201035: The link to work item {target} already exists.")
    _check_single_parent(work_item_id, result, relation, context)
    return relation


def _target_id(url: str) -> int:
    match = _WORK_ITEM_URL.search(url)
    if match is None:
        raise protocol.invalid_patch(f"The relation url '{url}' is not a work item url.")
    return int(match.group(1))


def _check_single_parent(
    work_item_id: int, result: PatchResult, relation: Relation, context: PatchContext
) -> None:
    """A work item has at most one parent (WorkItemLinkAddExtraParentException)."""
    child, parent = (
        (work_item_id, relation.target)
        if relation.rel == PARENT
        else (relation.target, work_item_id)
    )
    if relation.rel not in (PARENT, CHILD):
        return
    if relation.rel == PARENT:
        has_parent = any(existing.rel == PARENT for existing in result.relations)
    else:
        has_parent = context.parent_of(int(child)) not in (None, work_item_id)
    if has_parent:
        raise HttpError(
            400,
            protocol.wrapped_exception(
                f"TF201036: You cannot add a Child link between work items {parent} and {child} "
                "because a work item can have only one Parent link.",
                "WorkItemLinkAddExtraParentException",
            ),
        )
