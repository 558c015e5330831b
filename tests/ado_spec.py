"""Validate Azure DevOps JSON and requests against `specs/ado-wit-7.1.json` (Swagger 2.0).

Definitions are checked with Draft 4 semantics (`jsonschema.Draft4Validator`), `#/definitions/`
references resolved inside the spec. Four habits of Microsoft's generated Swagger are bridged,
each where the spec itself says so:
- `{"type": "object"}` with nothing else is C#'s `object`/`JToken`: any JSON value. The spec's
  own examples put numbers in `JsonPatchOperation.value` ("either a primitive or a JToken") and
  strings/numbers in `WorkItem.fields`.
- `JsonPatchDocument` is declared an object whose `allOf` is an array: it is the array.
- `StreamedBatch<T>` lost its type parameter (`items: {"type": "string", "format": "T"}`); for
  `ReportingWorkItemRevisionsBatch` T is `WorkItem`, as its examples show.
- `ReferenceLinks` (`_links`) is a dictionary of `{href}` links (or arrays of them), not an
  object with a `links` property.
- A list answer declared `type: array` arrives wrapped as `{"count": n, "value": [...]}` (the
  VSS collection wrapper that msrest unwraps; see the official examples).
`strict=True` also refuses properties a definition does not declare (after merging `allOf`
parents), which catches misspelled keys; the official examples pass it.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema

SPECS = Path(__file__).resolve().parent.parent / "specs"
SPEC_PATH = SPECS / "ado-wit-7.1.json"
EXAMPLES = SPECS / "ado-wit-7.1-examples"
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?(Z|[+-]\d{2}:\d{2})$")
_ANY = ("description", "type", "format", "x-ms-enum")


class SpecViolation(AssertionError):
    """A body or request that the spec does not allow; the message lists every problem."""


@lru_cache(maxsize=1)
def load_spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text(encoding="utf-8-sig"))


def _is_any(schema: Mapping[str, Any]) -> bool:
    return schema.get("type") == "object" and all(key in _ANY for key in schema)


def _bridge(node: Any) -> Any:
    """Replace every bare `{"type": "object"}` by `{}` (any JSON value)."""
    if isinstance(node, dict):
        if _is_any(node):
            return {"description": node.get("description", "")}
        return {key: _bridge(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_bridge(value) for value in node]
    return node


def _merged(definitions: dict[str, Any], name: str) -> dict[str, Any]:
    """A definition with the properties of its `allOf` parents merged in (for strict mode)."""
    definition = copy.deepcopy(definitions[name])
    properties: dict[str, Any] = {}
    for parent in definition.pop("allOf", []):
        ref = parent.get("$ref", "")
        if ref.startswith("#/definitions/"):
            properties.update(_merged(definitions, ref.rsplit("/", 1)[1]).get("properties", {}))
    properties.update(definition.get("properties", {}))
    if properties:
        definition["properties"] = properties
        definition["additionalProperties"] = False
    return definition


@lru_cache(maxsize=2)
def definitions(strict: bool) -> dict[str, Any]:
    raw = load_spec()["definitions"]
    result = {name: (_merged(raw, name) if strict else copy.deepcopy(raw[name])) for name in raw}
    result = _bridge(result)
    generic = result["StreamedBatch"]["properties"]["values"]
    generic["items"] = {}
    revisions = copy.deepcopy(result["StreamedBatch"])
    revisions["properties"]["values"] = {
        "type": "array",
        "items": {"$ref": "#/definitions/WorkItem"},
    }
    result["ReportingWorkItemRevisionsBatch"] = revisions
    result["JsonPatchDocument"] = {
        "type": "array",
        "items": {"$ref": "#/definitions/JsonPatchOperation"},
    }
    link = {"type": "object", "properties": {"href": {"type": "string"}}, "required": ["href"]}
    result["ReferenceLinks"] = {
        "type": "object",
        "additionalProperties": {"anyOf": [link, {"type": "array", "items": link}]},
    }
    return result


_FORMATS = jsonschema.FormatChecker(formats=())


@_FORMATS.checks("date-time")
def _is_date_time(value: object) -> bool:
    return not isinstance(value, str) or bool(_DATE_TIME.match(value))


def _errors(schema: Mapping[str, Any], instance: Any, strict: bool) -> list[str]:
    root = {**schema, "definitions": definitions(strict)}
    validator = jsonschema.Draft4Validator(root, format_checker=_FORMATS)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    ]


def validate(definition: str, instance: Any, *, strict: bool = False) -> None:
    """Raise `SpecViolation` unless `instance` is a valid `#/definitions/<definition>`."""
    if definition not in load_spec()["definitions"]:
        raise KeyError(f"{definition} is not a definition of {SPEC_PATH.name}")
    problems = _errors({"$ref": f"#/definitions/{definition}"}, instance, strict)
    if problems:
        raise SpecViolation(f"not a valid {definition}:\n  " + "\n  ".join(problems[:20]))


# -- operations --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    spec: dict[str, Any]

    @property
    def operation_id(self) -> str:
        return str(self.spec["operationId"])

    def parameters(self) -> list[dict[str, Any]]:
        shared = load_spec().get("parameters", {})
        return [
            shared[p["$ref"].rsplit("/", 1)[1]] if "$ref" in p else p
            for p in self.spec["parameters"]
        ]


def _pattern(template: str) -> re.Pattern[str]:
    """Path parameters match one segment; `{project}` and `{team}` may be left out
    (`x-ms-required: false`; the library drops optional route segments it has no value for)."""
    regex = ""
    for segment in template.strip("/").split("/"):
        if segment in ("{project}", "{team}"):
            regex += r"(?:/[^/]+)?"
        elif segment.startswith("${"):
            regex += r"/\$[^/]+"  # `workitems/$Epic`: the dollar sign is part of the path
        elif segment.startswith("{"):
            regex += r"/[^/]+"
        else:
            regex += "/" + re.escape(segment)
    return re.compile(f"^{regex}/?$", re.IGNORECASE)


@lru_cache(maxsize=1)
def operations() -> tuple[Operation, ...]:
    found = [
        Operation(method.upper(), template, _pattern(template), operation)
        for template, methods in load_spec()["paths"].items()
        for method, operation in methods.items()
    ]
    # Longer templates first, so `/workitems/{id}` is not taken for `/workitems/{id}/updates`.
    return tuple(sorted(found, key=lambda op: -len(op.template)))


def operation(operation_id: str) -> Operation:
    for candidate in operations():
        if candidate.operation_id == operation_id:
            return candidate
    raise KeyError(operation_id)


def find_operation(method: str, path: str) -> Operation:
    for candidate in operations():
        if candidate.method == method.upper() and candidate.pattern.match(path):
            return candidate
    raise SpecViolation(f"{method} {path} is not an operation of {SPEC_PATH.name}")


def validate_response(
    operation_id: str, body: Any, *, status: str = "200", strict: bool = True, nulls: bool = False
) -> None:
    """Check an answer against the operation's response schema (list answers: `{count, value}`).

    `nulls` allows null entries in a list (what `errorPolicy=omit` returns for missing ids).
    """
    schema = operation(operation_id).spec["responses"][status]["schema"]
    if schema.get("type") != "array":
        problems = _errors(schema, body, strict)
    else:
        problems = _errors(_collection_schema(schema["items"], nulls), body, strict)
        if not problems and body["count"] != len(body["value"]):
            problems = [f"count is {body['count']} but value has {len(body['value'])} entries"]
    if problems:
        raise SpecViolation(
            f"not a valid answer of {operation_id}:\n  " + "\n  ".join(problems[:20])
        )


def _collection_schema(items: dict[str, Any], nulls: bool) -> dict[str, Any]:
    entry = {"anyOf": [items, {"type": "null"}]} if nulls else items
    return {
        "type": "object",
        "properties": {"count": {"type": "integer"}, "value": {"type": "array", "items": entry}},
        "required": ["count", "value"],
        "additionalProperties": False,
    }


# -- requests ----------------------------------------------------------------------------------
_ACCEPT_VERSION = re.compile(r"api-version=([^;,\s]+)", re.IGNORECASE)


def check_request(
    method: str, url: str, headers: Mapping[str, str] | None = None, body: Any = None
) -> str:
    """Check a request against its operation; returns the operation id.

    Query parameters must be declared, required ones present (api-version may come in the
    `Accept` header, as the `azure-devops` library sends it), typed as declared; the content
    type must be one the operation consumes; the body must match its schema (strict).
    """
    headers = {name.lower(): value for name, value in (headers or {}).items()}
    parts = urlsplit(url)
    found = find_operation(method, parts.path)
    query = {
        name: values[-1] for name, values in parse_qs(parts.query, keep_blank_values=True).items()
    }
    problems = list(_query_problems(found, query, headers))
    consumes = found.spec.get("consumes")
    content_type = headers.get("content-type", "").split(";")[0].strip()
    if body is not None and consumes and content_type not in consumes:
        problems.append(f"content type {content_type!r} is not one of {consumes}")
    for parameter in found.parameters():
        if parameter["in"] == "body" and body is not None:
            problems += _errors(parameter["schema"], body, strict=True)
        elif parameter["in"] == "body" and parameter.get("required"):
            problems.append("the body is required")
    if problems:
        raise SpecViolation(f"{method} {url} ({found.operation_id}):\n  " + "\n  ".join(problems))
    return found.operation_id


def _query_problems(
    found: Operation, query: Mapping[str, str], headers: Mapping[str, str]
) -> Iterator[str]:
    declared = {p["name"]: p for p in found.parameters() if p["in"] == "query"}
    for name in query:
        if name not in declared:
            yield f"query parameter {name!r} is not declared"
    for name, parameter in declared.items():
        value = query.get(name)
        if name == "api-version" and value is None:
            value = next(iter(_ACCEPT_VERSION.findall(headers.get("accept", ""))), None)
        if value is None:
            if parameter.get("required"):
                yield f"required query parameter {name!r} is missing"
            continue
        yield from _typed_problems(name, value, parameter)


def _typed_problems(name: str, value: str, parameter: Mapping[str, Any]) -> Iterator[str]:
    kind = parameter.get("type")
    if kind == "boolean" and value.lower() not in ("true", "false"):
        yield f"{name}={value!r} is not a boolean"
    if kind == "integer" and not re.fullmatch(r"-?\d+", value):
        yield f"{name}={value!r} is not an integer"
    if "enum" in parameter and value.lower() not in [str(v).lower() for v in parameter["enum"]]:
        yield f"{name}={value!r} is not one of {parameter['enum']}"
    if parameter.get("format") == "date-time" and not _DATE_TIME.match(value):
        yield f"{name}={value!r} is not a date-time"


# -- official examples -------------------------------------------------------------------------
def examples() -> Iterator[tuple[str, Path]]:
    """(operation id, example file) for every example of the spec vendored under `specs/`."""
    for found in operations():
        for reference in (found.spec.get("x-ms-examples") or {}).values():
            path = EXAMPLES / reference["$ref"].removeprefix("./httpExamples/")
            if path.exists():
                yield found.operation_id, path


def load_example(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8-sig"))
