"""Reading the YAML files a user writes and telling them, one line per problem, what is wrong.

Every problem reads `<file>: <key path>: <what was expected>`, with key paths in the user's
terms (`connections[1].wsjf_fields.job_size`). Pydantic's own locations also carry union branch
names (`jira`, `basic`, `function-after[...]`); those are dropped by walking the location along
the data the user wrote: a location step that is not a key of that data is a branch, not a key.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

Location = Sequence[int | str]

SECRET_WORDS = frozenset(
    {"token", "password", "pass", "passwd", "secret", "pat", "api_token", "api_key", "apikey"}
)
"""Keys that look like a secret value; the message points at the matching `*_env` key."""

_DISCRIMINATOR_KEYS = {"_auth_method()": "method"}
"""Callable discriminators (`connectors.settings.JiraAuth`) and the key they read."""

PATTERN_MEANINGS = {
    r"^[A-Za-z_][A-Za-z0-9_]*$": "must be letters, digits and _, not starting with a digit",
    r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$": (
        "must be 1-63 letters, digits, _ . or -, starting with a letter or digit"
    ),
    r"^https?://[^\s/]+(/[^\s]*)?$": "must be an http(s) URL such as https://example.com",
    r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$": (
        "must be letters, digits, _ . : / or -, starting with a letter or digit"
    ),
}
"""Readable meanings of the patterns used by the config models (keyed by pattern)."""


def scalar_text(value: object) -> object:
    """YAML reads `2025`, `1.5` and `2025-07-01` as numbers and dates; where a name is
    expected (ids, team names, priorities) they are the text the user wrote. Booleans are
    left alone, so `yes`/`true` is reported instead of silently becoming "True"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) or hasattr(value, "isoformat"):
        return str(value)
    return value


class ConfigError(Exception):
    """A config or OKR file the user has to fix. `problems` holds one line per problem."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: list[str] = list(problems)
        super().__init__("\n".join(self.problems))


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys: PyYAML would silently keep the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, typing.Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml_mapping(path: Path, display: str) -> dict[str, Any]:
    """The top-level mapping of a YAML file; every failure is a `ConfigError` naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{display}: file not found"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{display}: is a folder, expected a YAML file"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{display}: is not UTF-8 text"]) from None
    except OSError as exc:
        raise ConfigError([f"{display}: cannot be read: {exc.strerror}"]) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([_syntax_problem(display, exc, text)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{display}: invalid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        found = "nothing" if data is None else f"a {_yaml_type(data)}"
        raise ConfigError([f"{display}: top level: expected a mapping of keys, found {found}"])
    return data


def _syntax_problem(display: str, exc: yaml.MarkedYAMLError, text: str = "") -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = exc.problem or exc.context or "syntax error"
    if "alias" in f"{exc.problem} {exc.context}":
        problem += " (quote values that start with '*', e.g. cron expressions)"
    elif "mapping values are not allowed" in problem and mark is not None:
        problem += _colon_hint(text, mark.line)
    return f"{display}: {where}invalid YAML: {problem}"


_KEY_AND_VALUE = re.compile(r"^\s*(?:-\s+)?(?P<key>[^\s:#'\"][^:#]*?):\s+(?P<value>\S.*?)\s*$")


def _colon_hint(text: str, line: int) -> str:
    """The fix for a value with a colon in it (`label_prefix: kr:` reads as a nested mapping):
    quote it. Names the key and shows the quoted line when the line is a plain `key: value`."""
    lines = text.splitlines()
    found = _KEY_AND_VALUE.match(lines[line]) if 0 <= line < len(lines) else None
    if found is None:
        return " (quote values that contain ': ' or end with ':')"
    key, value = found["key"].strip(), found["value"]
    quoted = "'" + value.replace("'", "''") + "'"
    return f" (the value of {key} has a ':' in it: quote it, {key}: {quoted})"


def _yaml_type(value: object) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def format_key_path(location: Location) -> str:
    """`('connections', 1, 'wsjf_fields')` -> `connections[1].wsjf_fields`."""
    text = ""
    for step in location:
        if isinstance(step, int):
            text += f"[{step}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", step):
            text += f".{step}" if text else step
        else:
            text += f"[{step!r}]"
    return text or "(top level)"


def validation_problems(
    display: str, error: ValidationError, model: type[BaseModel], data: object
) -> list[str]:
    """One line per pydantic error, in the order the keys appear, without duplicates."""
    lines: list[str] = []
    for detail in error.errors(include_url=False):
        user_location = _user_location(detail["loc"], data, detail["type"] == "missing")
        key_path, message = _describe(detail, user_location, model)
        line = f"{display}: {key_path}: {message}"
        if line not in lines:
            lines.append(line)
    return lines


def _user_location(location: Location, data: object, missing: bool) -> list[int | str]:
    """Drop the steps of `location` that are union branches rather than keys of `data`; the
    last step of a `missing` error is the key that is missing."""
    kept: list[int | str] = []
    current = data
    for position, step in enumerate(location):
        last = position == len(location) - 1
        if _has_step(current, step):
            kept.append(step)
            current = current[step]  # type: ignore[index]
        elif missing and last and isinstance(step, str) and isinstance(current, dict):
            kept.append(step)  # a missing key
    return kept


def _has_step(data: object, step: int | str) -> bool:
    if isinstance(data, dict):
        return step in data
    return isinstance(data, list) and isinstance(step, int) and 0 <= step < len(data)


def _describe(
    detail: ErrorDetails, location: list[int | str], model: type[BaseModel]
) -> tuple[str, str]:
    kind = detail["type"]
    ctx = detail.get("ctx") or {}
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        key = _discriminator_key(str(ctx.get("discriminator", "")))
        expected = str(ctx.get("expected_tags") or _expected_tags(model, detail["loc"]))
        path = format_key_path([*location, key])
        expected = expected.replace("'", "")
        if kind == "union_tag_not_found":
            return path, f"field required, one of: {expected}"
        return path, f"unknown {key} {ctx.get('tag')!r}, expected one of: {expected}"
    path = format_key_path(location)
    if kind == "missing":
        return path, "field required"
    if kind == "extra_forbidden":
        return path, _unknown_key_message(str(location[-1]), _allowed_keys(model, detail["loc"]))
    pattern = str(ctx.get("pattern", ""))
    message = (
        PATTERN_MEANINGS.get(pattern, detail["msg"])
        if kind == "string_pattern_mismatch"
        else detail["msg"]
    )
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    message = message[:1].lower() + message[1:]
    shown = detail.get("input")
    if kind not in ("value_error", "assertion_error") and _safe_to_show(location, shown):
        message += f" (found {shown!r})"
    return path, message


def _discriminator_key(discriminator: str) -> str:
    name = discriminator.strip("'\"")
    return _DISCRIMINATOR_KEYS.get(name, name)


def _safe_to_show(location: list[int | str], value: object) -> bool:
    """Echo a wrong value only when it is a short scalar that cannot be a pasted secret."""
    key = str(location[-1]) if location else ""
    if key.endswith("_env") or key.lower() in SECRET_WORDS:
        return False
    return isinstance(value, bool | int | float) or (isinstance(value, str) and len(value) <= 40)


def _unknown_key_message(key: str, allowed: list[str]) -> str:
    env_keys = [name for name in allowed if name.endswith("_env")]
    if key.lower() in SECRET_WORDS or f"{key}_env" in allowed:
        target = f"{key}_env" if f"{key}_env" in allowed else " or ".join(env_keys)
        if target:
            return (
                f"unknown key; secrets never go in the config file: put the secret in an "
                f"environment variable and name that variable in {target}"
            )
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key, did you mean {close[0]}?"
    if allowed:
        return f"unknown key, expected one of: {', '.join(allowed)}"
    return "unknown key"


def _allowed_keys(model: type[BaseModel], location: Location) -> list[str]:
    """Key names of the model that holds the last step of a pydantic `location`."""
    target = _type_at(model, location[:-1])
    if isinstance(target, type) and issubclass(target, BaseModel):
        return [info.alias or name for name, info in target.model_fields.items()]
    return []


def _expected_tags(model: type[BaseModel], location: Location) -> str:
    target = _type_at(model, location)
    tags = [tag for member in _union_members(target) if (tag := _member_tag(member)) is not None]
    return ", ".join(tags)


def _type_at(model: type[BaseModel], location: Location) -> Any:
    """Follow a pydantic error location through the annotations, choosing union branches by
    the tag names pydantic puts in the location."""
    current: Any = model
    for step in location:
        current = _unwrap(current)
        members = _union_members(current)
        if members:
            chosen = [member for member in members if _member_tag(member) == step]
            if chosen:
                current = chosen[0]
            continue
        origin = typing.get_origin(current)
        if isinstance(current, type) and issubclass(current, BaseModel) and isinstance(step, str):
            field = _field_by_key(current, step)
            if field is None:
                return None
            current = field
        elif origin in (list, tuple, set, frozenset) and isinstance(step, int):
            current = typing.get_args(current)[0]
        elif origin is dict:
            current = typing.get_args(current)[1]
    return _unwrap(current)


def _field_by_key(model: type[BaseModel], key: str) -> Any:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info.annotation
    return None


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    members = _union_members(annotation)
    non_null = [member for member in members if member is not type(None)]
    if members and len(non_null) == 1:
        return _unwrap(non_null[0])
    return annotation


def _union_members(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return ()


def _member_tag(member: Any) -> str | None:
    """The tag of a union member: a `Tag(...)` annotation or the literal of its `kind` field."""
    if typing.get_origin(member) is typing.Annotated:
        for extra in typing.get_args(member)[1:]:
            tag = getattr(extra, "tag", None)
            if isinstance(tag, str):
                return tag
        member = typing.get_args(member)[0]
    if isinstance(member, type) and issubclass(member, BaseModel):
        field = member.model_fields.get("kind")
        if field is not None and typing.get_origin(field.annotation) is typing.Literal:
            return str(typing.get_args(field.annotation)[0])
    return None
